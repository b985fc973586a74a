"""Tracking normalizer: SQS batches of raw pushes/poll results -> canonical events, status, events."""
