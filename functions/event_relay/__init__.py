"""event_relay: the table stream's consumer (the transactional outbox's relay to EventBridge)."""
