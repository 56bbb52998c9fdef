"""Tables: Parquet data in the control plane's storage, registered by name in a schema."""
