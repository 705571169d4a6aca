"""Metrics, logs and the records (call log, audit trail) the gateway keeps of what it did."""
