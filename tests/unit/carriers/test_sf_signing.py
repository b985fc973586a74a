"""SF Fengqiao msgDigest and Java URLEncoder semantics: REFERENCE.md §0 and §2.2 golden vectors."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcelhub.carriers.sf.signing import java_url_encode, msg_digest
from sandbox.carriers.sf import java_url_encode as sandbox_java_url_encode

pytestmark = pytest.mark.unit

GOLDEN_MSG_DATA = '{"language":"0","trackingType":"1","trackingNumber":["SF1234567890123"],"methodType":"1"}'
GOLDEN_TIMESTAMP = "1700000000000"
GOLDEN_CHECKWORD = "TESTCHECKWORD0000000000000000000"
GOLDEN_DIGEST = "xCv72pnbGvziYQDEdpJygw=="


def test_msg_digest_golden_vector() -> None:
    # Given the REFERENCE §2.2 inputs / When we sign / Then we get the published digest
    assert msg_digest(GOLDEN_MSG_DATA, GOLDEN_TIMESTAMP, GOLDEN_CHECKWORD) == GOLDEN_DIGEST


def test_msg_digest_is_base64_of_the_raw_md5_not_of_the_hex() -> None:
    # Given the golden inputs / When signed / Then the value is 24 chars ending "==" (raw 16-byte digest)
    digest = msg_digest(GOLDEN_MSG_DATA, GOLDEN_TIMESTAMP, GOLDEN_CHECKWORD)
    assert len(digest) == 24
    assert digest.endswith("==")
    assert len(base64.b64decode(digest)) == 16
    # and the Kdniao-style Base64-of-hex is a different (wrong) value
    encoded = java_url_encode(GOLDEN_MSG_DATA + GOLDEN_TIMESTAMP + GOLDEN_CHECKWORD)
    hex_variant = base64.b64encode(hashlib.md5(encoded.encode()).hexdigest().encode()).decode()
    assert digest != hex_variant


def test_java_url_encoder_semantics() -> None:
    # Given REFERENCE §0's check string / Then "*" stays, "~" becomes %7E, space becomes "+"
    assert java_url_encode("a b*c~d") == "a+b*c%7Ed"
    # Python's quote_plus does the opposite on "*" and "~"
    assert urllib.parse.quote_plus("a b*c~d") == "a+b%2Ac~d"


def test_digest_of_a_payload_with_star_and_tilde_uses_java_encoding() -> None:
    # Given a payload containing "*" and "~" (an address like "3号楼*2单元~东")
    msg_data = '{"address":"3号楼*2单元~东","remark":"a b"}'
    java_encoded = java_url_encode(msg_data + GOLDEN_TIMESTAMP + GOLDEN_CHECKWORD)
    assert "*2" in java_encoded
    assert "%7E" in java_encoded
    # When signed / Then the digest is over the Java-encoded string, not over quote_plus's output
    expected = base64.b64encode(hashlib.md5(java_encoded.encode()).digest()).decode()
    assert msg_digest(msg_data, GOLDEN_TIMESTAMP, GOLDEN_CHECKWORD) == expected
    python_encoded = urllib.parse.quote_plus(msg_data + GOLDEN_TIMESTAMP + GOLDEN_CHECKWORD)
    karrio_style = base64.b64encode(hashlib.md5(python_encoded.encode()).digest()).decode()
    assert msg_digest(msg_data, GOLDEN_TIMESTAMP, GOLDEN_CHECKWORD) != karrio_style


@given(st.text(max_size=60))
def test_plugin_encoder_matches_an_encoder_written_from_javas_spec(text: str) -> None:
    # Given any text (CJK, symbols, spaces) / Then the plugin agrees with the sandbox's char-by-char
    # URLEncoder (alphanumerics and ".-*_" kept, space "+", everything else %XX of UTF-8)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be sent at all
        return
    assert java_url_encode(text) == sandbox_java_url_encode(text)
