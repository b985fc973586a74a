"""Use cases: the logic behind each Lambda entry point (no Lambda events, no boto3 here)."""
