"""An API authentication gateway: keys, tokens, limits and an audit trail in front of existing APIs."""

__version__ = "0.1.0"
