"""Dev-only generators, run as ``python -m tools.<name>`` (not part of the Lambda layer)."""
