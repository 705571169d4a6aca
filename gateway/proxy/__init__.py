"""The proxy listener: from an HTTPS request to a streamed upstream exchange."""
