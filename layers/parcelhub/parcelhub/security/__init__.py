"""Personal data masking for display and logs (:mod:`.masking`). Encryption at rest is the KMS adapter
(:mod:`parcelhub.adapters.kms`)."""
