"""The OMS API (Powertools HTTP API resolver with validation, one router per resource)."""
