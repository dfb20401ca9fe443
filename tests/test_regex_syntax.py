"""``dsl.regex_syntax.required_texts``: texts one of which every text a pattern matches in
holds (the scan's pushdown reads ``matches`` through them)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import REGEXES

from dsl.regex_syntax import REQUIRED_MAX, required_texts
from dsl.text import compile_regex, regex_search

PATTERNS = (*REGEXES, r"zzzq[0-9]{4}", r"a(b|c)+d", r"(?:x|yz)+w?", r"\x41\.B", r"^(foo|ba[rz])$", r"(ab)*c",
            r"t{2,3}e", r"((a|b)(c|d))e?")


@pytest.mark.parametrize(("pattern", "ignore_case", "texts"), [
    (r"^CM-[0-9]{4}$", False, {"CM-"}),
    (r"bitcoin|ether", False, {"bitcoin", "ether"}),
    (r"(S19|L7)j? pro", False, {" pro"}),  # the longest: " pro" holds 4 characters, S19/L7 at least 2
    (r"https?://x\.io/a", False, {"://x.io/a"}),
    (r"\x41\.B", False, {"A.B"}),
    (r"ab(c|)d", False, {"ab"}),  # an alternative without text ends the run
    (r"a(b|c)+d", False, {"a"}),
    (r"(ab)*c", False, {"c"}),  # a repetition that may be empty requires nothing
    (r"((a|b)(c|d))e?", False, {"a", "b"}),
    (r"bitcoin", True, None),  # letters of a case-insensitive pattern are classes
    (r"(?i)bitcoin", False, None),
    (r"[0-9]{40}", False, None),
    (r"x|[ab]", False, None),  # an alternative with no text
    (r"^\s*$", False, None),
    (r"\pL", False, None),  # outside the supported subset
    ("|".join(f"w{i}" for i in range(REQUIRED_MAX + 1)), False, None),  # too many
])
def test_required_texts(pattern: str, ignore_case: bool, texts: set[str] | None) -> None:
    assert required_texts(pattern, ignore_case) == (None if texts is None else frozenset(texts))


@given(st.sampled_from(PATTERNS), st.data())
def test_every_text_a_pattern_matches_in_holds_one(pattern: str, data: st.DataObject) -> None:
    """A text drawn to hold a match (Python's reading of the pattern, then RE2's search
    decides) holds one of the required texts."""
    required = required_texts(pattern, False)
    assume(required is not None)
    assert required
    text = data.draw(st.one_of(st.from_regex(pattern), st.text(max_size=8)))
    assume(regex_search(compile_regex(pattern), text))
    assert any(t in text for t in required), (pattern, text, required)
