"""Tracking poller: scheduled queries of providers for shipments whose tracking went quiet."""
