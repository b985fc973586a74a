"""PII envelope encryption against KMS (moto): one data key for many shipments, tamper-evident envelopes."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from parcelhub.adapters.kms import (
    ENCRYPTION_CONTEXT,
    PiiCipher,
    PiiConfigError,
    PiiIntegrityError,
)
from parcelhub.domain.models import Party

pytestmark = pytest.mark.integration


@dataclass
class Kms:
    client: Any
    key_id: str
    calls: Counter[str]

    def cipher(self, **kwargs: Any) -> PiiCipher:
        return PiiCipher(self.key_id, client_factory=lambda: self.client, **kwargs)


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kms]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key(Description="parcelhub pii (test)")["KeyMetadata"]["KeyId"]
        client.create_alias(AliasName="alias/parcelhub-test-pii", TargetKeyId=key_id)
        calls: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        # Count every KMS API call as it leaves the client (botocore event hook).
        client.meta.events.register("before-call.kms.*", count)
        yield Kms(client=client, key_id="alias/parcelhub-test-pii", calls=calls)


def receiver(n: int) -> Party:
    return Party(
        name=f"欧阳娜{'娜' * (n % 3)}",
        phone=f"138{n:08d}",
        province="广东省",
        city="深圳市",
        district="南山区",
        address=f"软件产业基地{n % 30 + 1}栋{n}室",
        postcode="518000",
    )


def test_100_shipments_cost_one_generate_data_key_and_one_decrypt(kms: Kms) -> None:
    # Given 100 receivers for 100 shipments
    parties = {f"shp_{n:04d}": receiver(n) for n in range(100)}
    writer = kms.cipher()

    # When the API encrypts them all
    envelopes = {sid: writer.encrypt_party(party, sid) for sid, party in parties.items()}

    # Then KMS was asked for exactly one data key
    assert kms.calls["GenerateDataKey"] == 1
    assert kms.calls["Decrypt"] == 0

    # When another process (the waybill step: a fresh cipher, cold cache) decrypts all 100
    reader = kms.cipher()
    opened = {sid: reader.decrypt_party(env, sid) for sid, env in envelopes.items()}

    # Then it made exactly one Decrypt call, and every party comes back intact
    assert kms.calls["Decrypt"] == 1
    assert opened == parties


def test_the_encrypting_process_reuses_its_own_key_for_decryption(kms: Kms) -> None:
    # Given a cipher that just encrypted a party
    cipher = kms.cipher()
    envelope = cipher.encrypt_party(receiver(1), "shp_1")
    # When the same process decrypts it / Then no Decrypt call is needed (the data key is cached)
    assert cipher.decrypt_party(envelope, "shp_1") == receiver(1)
    assert kms.calls["Decrypt"] == 0


def test_the_data_key_is_bounded_by_message_count(kms: Kms) -> None:
    # Given a cache that allows 10 messages per data key
    cipher = kms.cipher(max_messages=10)
    # When 25 parties are encrypted
    envelopes = [cipher.encrypt_party(receiver(n), f"shp_{n}") for n in range(25)]
    # Then three data keys were generated, and the envelopes name three distinct encrypted keys
    assert kms.calls["GenerateDataKey"] == 3
    assert len({json.loads(e)["edk"] for e in envelopes}) == 3


def test_the_data_key_is_bounded_by_age(kms: Kms) -> None:
    # Given a cache with a 300 s lifetime and a clock we can move
    now = [1000.0]
    cipher = kms.cipher(max_age_seconds=300, clock=lambda: now[0])
    cipher.encrypt_party(receiver(1), "shp_1")
    now[0] += 299
    cipher.encrypt_party(receiver(2), "shp_2")
    assert kms.calls["GenerateDataKey"] == 1
    # When the key is older than its lifetime
    now[0] += 2
    cipher.encrypt_party(receiver(3), "shp_3")
    # Then a new one is generated
    assert kms.calls["GenerateDataKey"] == 2


def test_envelope_shape_and_secrecy(kms: Kms) -> None:
    # Given 50 envelopes of the same party
    party = receiver(7)
    cipher = kms.cipher()
    envelopes = [cipher.encrypt_party(party, "shp_7") for _ in range(50)]
    first = json.loads(envelopes[0])
    # Then the envelope is compact JSON with version, key ARN, encrypted data key, nonce, ciphertext
    assert set(first) == {"v", "kid", "edk", "iv", "ct"}
    assert first["v"] == 1
    assert first["kid"].startswith("arn:aws:kms:us-east-1:")
    assert len(base64.b64decode(first["iv"])) == 12
    # and every envelope has a fresh nonce, and none shows the name, phone or address
    assert len({json.loads(e)["iv"] for e in envelopes}) == 50
    for envelope in envelopes:
        assert party.phone not in envelope
        assert party.name not in envelope
        assert party.address not in envelope


def test_the_data_key_is_bound_to_the_encryption_context(kms: Kms) -> None:
    # Given an envelope's encrypted data key
    envelope = json.loads(kms.cipher().encrypt_party(receiver(3), "shp_3"))
    blob = base64.b64decode(envelope["edk"])
    # When KMS is asked to decrypt it without (or with another) encryption context
    # Then it refuses; with ours it works
    for context in ({}, {"app": "parcelhub", "purpose": "other"}):
        with pytest.raises(kms.client.exceptions.InvalidCiphertextException):
            kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert len(kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"]) == 32


def test_an_envelope_does_not_open_for_another_shipment(kms: Kms) -> None:
    # Given the receiver of shipment A
    envelope = kms.cipher().encrypt_party(receiver(1), "shp_A")
    # When it is copied onto shipment B and decrypted there / Then authentication fails
    with pytest.raises(PiiIntegrityError):
        kms.cipher().decrypt_party(envelope, "shp_B")


@pytest.mark.parametrize("field", ["ct", "iv"])
def test_a_tampered_envelope_fails(kms: Kms, field: str) -> None:
    # Given an envelope with one bit flipped in its ciphertext or nonce
    data = json.loads(kms.cipher().encrypt_party(receiver(1), "shp_1"))
    raw = bytearray(base64.b64decode(data[field]))
    raw[len(raw) // 2] ^= 0x01
    data[field] = base64.b64encode(bytes(raw)).decode()
    # When decrypted / Then it is rejected as tampered
    with pytest.raises(PiiIntegrityError):
        kms.cipher().decrypt_party(json.dumps(data), "shp_1")


def test_a_tampered_data_key_is_rejected_by_kms(kms: Kms) -> None:
    # Given an envelope whose encrypted data key was altered
    data = json.loads(kms.cipher().encrypt_party(receiver(1), "shp_1"))
    raw = bytearray(base64.b64decode(data["edk"]))
    raw[-1] ^= 0x01
    data["edk"] = base64.b64encode(bytes(raw)).decode()
    # When decrypted / Then KMS refuses it and the caller sees an integrity error
    with pytest.raises(PiiIntegrityError):
        kms.cipher().decrypt_party(json.dumps(data), "shp_1")


@pytest.mark.parametrize(
    "envelope", ["", "not json", '{"v": 2}', '{"v": 1, "kid": "k", "edk": "!!", "iv": "", "ct": ""}']
)
def test_malformed_envelopes_fail_without_calling_kms(kms: Kms, envelope: str) -> None:
    with pytest.raises(PiiIntegrityError):
        kms.cipher().decrypt_party(envelope, "shp_1")
    assert kms.calls["Decrypt"] == 0


def test_an_unknown_key_is_a_configuration_error(kms: Kms) -> None:
    # Given a cipher configured with a key alias that does not exist
    cipher = PiiCipher("alias/does-not-exist", client_factory=lambda: kms.client)
    # When it encrypts / Then the error says "configuration", not "retry"
    with pytest.raises(PiiConfigError) as caught:
        cipher.encrypt_party(receiver(1), "shp_1")
    assert caught.value.retryable is False
