"""Key lifecycle events: the transactional outbox, signed webhook deliveries and their dispatcher."""
