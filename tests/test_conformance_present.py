"""The conformance corpus must be there: the suite runs it in place, and the tests that read
it skip without it, so a missing corpus would otherwise pass CI while testing nothing."""

from __future__ import annotations

import os

from conformance import CORPUS


def test_the_conformance_corpus_is_beside_the_repository() -> None:
    if os.environ.get("POLICY_NO_CONFORMANCE") == "1":
        return  # an explicit choice, e.g. testing an unpacked sdist on its own
    assert (CORPUS / "check").is_dir() and (CORPUS / "decisions").is_dir() and (CORPUS / "tests").is_dir(), (
        f"the conformance corpus is not at {CORPUS}: the suite must run it in place "
        "(set POLICY_NO_CONFORMANCE=1 to run without it on purpose)")
