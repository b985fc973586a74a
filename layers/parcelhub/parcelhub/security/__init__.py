"""Personal data: KMS envelope encryption (:mod:`.pii`) and masking for display and logs (:mod:`.masking`).

Nothing is built at import: the KMS client and the cipher come from cached factories.
"""

from parcelhub.security.masking import (
    RedactingFilter,
    mask_address,
    mask_name,
    mask_party,
    mask_phone,
    redact,
    redact_text,
)
from parcelhub.security.pii import (
    ENCRYPTION_CONTEXT,
    PiiCipher,
    PiiConfigError,
    PiiError,
    PiiIntegrityError,
    PiiUnavailable,
    kms_client,
    pii_cipher,
)

__all__ = [
    "ENCRYPTION_CONTEXT",
    "PiiCipher",
    "PiiConfigError",
    "PiiError",
    "PiiIntegrityError",
    "PiiUnavailable",
    "RedactingFilter",
    "kms_client",
    "mask_address",
    "mask_name",
    "mask_party",
    "mask_phone",
    "pii_cipher",
    "redact",
    "redact_text",
]
