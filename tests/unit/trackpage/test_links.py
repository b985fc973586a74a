"""Tracking tokens: authentic ones verify, anything altered or minted without the secret does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.security.links import TrackingLinks, last_digits

SECRET = "unit-test-tracking-link-secret-0123456789"
LINKS = TrackingLinks(SECRET, "https://track.brand.example/")
SHIPMENT = "shp_0190a1b2c3de4f5a6b7c8d"


def test_a_token_names_its_shipment_and_verifies() -> None:
    token = LINKS.token(SHIPMENT)
    assert token.startswith(f"{SHIPMENT}.")
    assert len(token.rpartition(".")[2]) == 22  # 128 bits, base64url
    assert LINKS.verify(token) == SHIPMENT
    assert LINKS.url(SHIPMENT) == f"https://track.brand.example/t/{token}"


def test_another_secret_cannot_mint_or_verify() -> None:
    other = TrackingLinks("another-secret-of-at-least-32-bytes-000")
    assert other.token(SHIPMENT) != LINKS.token(SHIPMENT)
    assert other.verify(LINKS.token(SHIPMENT)) is None
    assert LINKS.verify(other.token(SHIPMENT)) is None


def test_one_shipments_mac_does_not_open_another() -> None:
    mac = LINKS.token(SHIPMENT).rpartition(".")[2]
    assert LINKS.verify(f"shp_0190a1b2c3de4f5a6b7c8e.{mac}") is None


@given(st.data())
def test_any_change_to_a_token_is_refused(data: st.DataObject) -> None:
    token = LINKS.token(SHIPMENT)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCxyz019-_."))
    changed = token[:position] + replacement + token[position + 1 :]
    if changed != token:
        assert LINKS.verify(changed) is None


@pytest.mark.parametrize("token", ["", ".", SHIPMENT, f"{SHIPMENT}.", "a.b.c", "../etc/passwd", "x" * 500, "ü.ü"])
def test_malformed_tokens_are_refused(token: str) -> None:
    assert LINKS.verify(token) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TrackingLinks("short")


def test_the_lookup_digest_checks_digits_per_shipment() -> None:
    digest = LINKS.lookup_digest(SHIPMENT, "6057")
    assert "6057" not in digest
    assert LINKS.digits_match(SHIPMENT, "6057", digest)
    assert not LINKS.digits_match(SHIPMENT, "6058", digest)
    assert not LINKS.digits_match("shp_other", "6057", digest)  # bound to its shipment
    assert not LINKS.digits_match(SHIPMENT, "6057", None)


@pytest.mark.parametrize(
    ("phone", "digits"),
    [("18688806057", "6057"), ("+86 186 8880 6057", "6057"), ("0755-86001234", "1234"), ("12", None)],
)
def test_last_digits(phone: str, digits: str | None) -> None:
    assert last_digits(phone) == digits
