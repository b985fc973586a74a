"""docs/security.md: the hand-written threat model is kept, the role tables below the marker regenerated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import security_doc

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_document_is_current_and_keeps_its_threat_model() -> None:
    committed = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert security_doc.document(committed, security_doc.render()) == committed
    assert committed.index("## Who can call what") < committed.index(security_doc.MARKER)


def test_regenerating_replaces_only_what_follows_the_marker() -> None:
    # Given a threat model above the marker and stale tables below it
    existing = f"# Security\n\nhand-written\n\n{security_doc.MARKER}\n\nstale tables\n"
    # When the document is regenerated
    regenerated = security_doc.document(existing, "fresh tables\n")
    # Then the hand-written part is untouched and only the tables changed
    assert regenerated == f"# Security\n\nhand-written\n\n{security_doc.MARKER}\n\nfresh tables\n"


def test_a_document_without_the_marker_is_refused_rather_than_overwritten() -> None:
    with pytest.raises(SystemExit, match="marker"):
        security_doc.document("# Security\n\nhand-written only\n", "tables\n")
