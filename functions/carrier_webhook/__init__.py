"""Carrier webhooks: verify, enqueue the raw push, ACK in the provider's own format."""
