"""Credentials: parsing request headers, the API key format, and gateway-signed tokens."""
