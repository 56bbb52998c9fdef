"""The cluster's OCI registry: the tokens that authorize pushes and pulls, and their signing key."""
