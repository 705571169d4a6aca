"""Access control on the proxy path: who is calling, what they may do, and how often."""
