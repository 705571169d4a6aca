"""Where tenants, users and keys live: a small protocol, one module per backend, a cache in front."""
