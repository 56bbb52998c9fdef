"""SQL statements: the control statements here, queries through sqlglot and DuckDB later."""
