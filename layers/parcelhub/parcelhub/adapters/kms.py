"""KMS: personal data at rest with envelope encryption with a bounded data-key cache (ARCHITECTURE §8).

One ``GenerateDataKey`` (AES_256) yields a data key that encrypts many parties: it is cached in memory
for at most ``max_age_seconds`` and ``max_messages`` encryptions, like the AWS Encryption SDK's caching
CMM, so a burst of 1,000 shipments costs one KMS call, not 3,000. Each party is sealed with
AES-256-GCM under a fresh 96-bit nonce, with the shipment id as associated data: an envelope copied
onto another shipment does not open. Decryption calls KMS ``Decrypt`` once per encrypted data key and
caches the plaintext key (bounded by age and count).

The envelope is compact JSON::

    {"v":1,"kid":"arn:aws:kms:…:key/…","edk":"<b64>","iv":"<b64 12 bytes>","ct":"<b64 ciphertext+tag>"}

KMS encryption context: ``{"app": "parcelhub", "purpose": "pii"}`` (it appears in CloudTrail and can be
required by the key policy).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from parcelhub.adapters import aws
from parcelhub.domain.models import Party

ENVELOPE_VERSION = 1
ENCRYPTION_CONTEXT: dict[str, str] = {"app": "parcelhub", "purpose": "pii"}
NONCE_BYTES = 12
DEFAULT_MAX_AGE_SECONDS = 300.0
DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_DECRYPT_CACHE_SIZE = 256

_RETRYABLE_KMS_CODES = frozenset(
    {
        "ThrottlingException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
        "LimitExceededException",
        "ServiceUnavailableException",
    }
)
_INTEGRITY_KMS_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class PiiError(Exception):
    """Base of every error of this module."""

    retryable = False


class PiiUnavailable(PiiError):
    """KMS is throttling or unreachable: retry later."""

    retryable = True


class PiiConfigError(PiiError):
    """The key is missing, disabled or not ours to use: a deployment problem, alert and don't retry."""


class PiiIntegrityError(PiiError):
    """The envelope was tampered with, is malformed, or belongs to another shipment."""


def kms_client() -> Any:
    """The KMS client, built on first use (never at import)."""
    return aws.client("kms")


@dataclass(slots=True)
class _DataKey:
    plaintext: bytes
    encrypted: bytes
    key_id: str
    created: float
    messages: int = 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _aad(shipment_id: str) -> bytes:
    return json.dumps({"v": ENVELOPE_VERSION, "shipment_id": shipment_id}, separators=(",", ":")).encode("utf-8")


class PiiCipher:
    """Encrypts and decrypts parties with KMS envelope encryption and a bounded data-key cache.

    Thread-safe. The composition root builds one per process and key, so the cache outlives a Lambda
    invocation.
    """

    def __init__(
        self,
        key_id: str,
        *,
        client_factory: Callable[[], Any] = kms_client,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        decrypt_cache_size: int = DEFAULT_DECRYPT_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not key_id:
            raise PiiConfigError("a KMS key id is required")
        if max_age_seconds <= 0 or max_messages < 1 or decrypt_cache_size < 1:
            raise ValueError("cache bounds must be positive")
        self.key_id = key_id
        self._client_factory = client_factory
        self._max_age = max_age_seconds
        self._max_messages = max_messages
        self._decrypt_cache_size = decrypt_cache_size
        self._clock = clock
        self._lock = threading.Lock()
        self._current: _DataKey | None = None
        self._plain_keys: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    @property
    def client(self) -> Any:
        return self._client_factory()

    # ------------------------------------------------------------------------------------ public

    def encrypt_party(self, party: Party, shipment_id: str) -> str:
        """Seal a party for ``shipment_id``; returns the envelope string stored with the shipment."""
        plaintext = party.model_dump_json(exclude_none=True).encode("utf-8")
        return self.encrypt_bytes(plaintext, shipment_id)

    def decrypt_party(self, envelope: str, shipment_id: str) -> Party:
        """Open an envelope made by :meth:`encrypt_party` for the same ``shipment_id``."""
        plaintext = self.decrypt_bytes(envelope, shipment_id)
        try:
            return Party.model_validate_json(plaintext)
        except ValidationError as exc:
            raise PiiIntegrityError("the envelope does not hold a party") from exc

    def encrypt_bytes(self, plaintext: bytes, shipment_id: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = self._data_key_for_encrypt()
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key.plaintext).encrypt(nonce, plaintext, _aad(shipment_id))
        envelope = {
            "v": ENVELOPE_VERSION,
            "kid": key.key_id,
            "edk": _b64(key.encrypted),
            "iv": _b64(nonce),
            "ct": _b64(ciphertext),
        }
        return json.dumps(envelope, separators=(",", ":"))

    def decrypt_bytes(self, envelope: str, shipment_id: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id, encrypted_key, nonce, ciphertext = _parse(envelope)
        plain_key = self._data_key_for_decrypt(encrypted_key, key_id)
        try:
            return AESGCM(plain_key).decrypt(nonce, ciphertext, _aad(shipment_id))
        except InvalidTag:
            raise PiiIntegrityError("authentication failed: tampered envelope or wrong shipment id") from None

    # ------------------------------------------------------------------------------------- cache

    def _data_key_for_encrypt(self) -> _DataKey:
        with self._lock:
            now = self._clock()
            current = self._current
            if current is None or now - current.created >= self._max_age or current.messages >= self._max_messages:
                current = self._generate_data_key(now)
                self._current = current
                self._remember(current.encrypted, current.plaintext, now)
            current.messages += 1
            return current

    def _data_key_for_decrypt(self, encrypted_key: bytes, key_id: str) -> bytes:
        with self._lock:
            now = self._clock()
            cached = self._plain_keys.get(encrypted_key)
            if cached is not None and now - cached[1] < self._max_age:
                self._plain_keys.move_to_end(encrypted_key)
                return cached[0]
            plaintext = self._kms_decrypt(encrypted_key, key_id)
            self._remember(encrypted_key, plaintext, now)
            return plaintext

    def _remember(self, encrypted_key: bytes, plaintext: bytes, now: float) -> None:
        self._plain_keys[encrypted_key] = (plaintext, now)
        self._plain_keys.move_to_end(encrypted_key)
        while len(self._plain_keys) > self._decrypt_cache_size:
            self._plain_keys.popitem(last=False)

    def clear(self) -> None:
        """Forget every cached data key (the next call goes to KMS)."""
        with self._lock:
            self._current = None
            self._plain_keys.clear()

    # --------------------------------------------------------------------------------------- KMS

    def _generate_data_key(self, now: float) -> _DataKey:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self.client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=ENCRYPTION_CONTEXT
            )
        except ClientError as exc:
            raise _translate(exc) from exc
        except BotoCoreError as exc:
            raise PiiUnavailable(f"KMS GenerateDataKey failed: {exc}") from exc
        return _DataKey(
            plaintext=bytes(reply["Plaintext"]),
            encrypted=bytes(reply["CiphertextBlob"]),
            key_id=str(reply.get("KeyId") or self.key_id),
            created=now,
        )

    def _kms_decrypt(self, encrypted_key: bytes, key_id: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self.client.decrypt(
                CiphertextBlob=encrypted_key, KeyId=key_id, EncryptionContext=ENCRYPTION_CONTEXT
            )
        except ClientError as exc:
            raise _translate(exc) from exc
        except BotoCoreError as exc:
            raise PiiUnavailable(f"KMS Decrypt failed: {exc}") from exc
        return bytes(reply["Plaintext"])


def _translate(exc: Any) -> PiiError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = f"KMS {exc.operation_name} failed: {code}"
    if code in _RETRYABLE_KMS_CODES:
        return PiiUnavailable(message)
    if code in _INTEGRITY_KMS_CODES:
        return PiiIntegrityError(message)
    return PiiConfigError(message)


def _parse(envelope: str) -> tuple[str, bytes, bytes, bytes]:
    try:
        data = json.loads(envelope)
        if not isinstance(data, dict) or data.get("v") != ENVELOPE_VERSION:
            raise PiiIntegrityError(f"unsupported envelope version {data.get('v') if isinstance(data, dict) else None}")
        key_id = data["kid"]
        encrypted_key = base64.b64decode(data["edk"], validate=True)
        nonce = base64.b64decode(data["iv"], validate=True)
        ciphertext = base64.b64decode(data["ct"], validate=True)
    except PiiIntegrityError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise PiiIntegrityError("malformed envelope") from exc
    if not isinstance(key_id, str) or len(nonce) != NONCE_BYTES or not encrypted_key or len(ciphertext) < 16:
        raise PiiIntegrityError("malformed envelope")
    return key_id, encrypted_key, nonce, ciphertext
