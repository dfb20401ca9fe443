"""``dsl.regex_syntax.required_texts``: texts one of which every text a pattern matches in
holds (the scan's pushdown reads ``matches`` through them)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import REGEXES

from dsl.regex_syntax import REQUIRED_MAX, Required, required_texts
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
    (r"[0-9]{40}", False, None),
    (r"x|[ab]", False, None),  # an alternative with no text
    (r"^\s*$", False, None),
    (r"\pL", False, None),  # outside the supported subset
    ("|".join(f"w{i}" for i in range(REQUIRED_MAX + 1)), False, None),  # too many
    (r"a{01}", False, {"a{01}"}),  # as RE2 reads them: not a count (a leading zero, digits not ASCII)
    ("a{\u0662}", False, {"a{\u0662}"}),
    (r"a{,3}", False, {"a{,3}"}),
    (r"\x{110000}", False, None),  # beyond Unicode: outside the subset
])
def test_required_texts(pattern: str, ignore_case: bool, texts: set[str] | None) -> None:
    assert required_texts(pattern, ignore_case) == (None if texts is None else Required(frozenset(texts), False))


@pytest.mark.parametrize(("pattern", "ignore_case", "texts"), [
    (r"Bitcoin|ETHER", True, {"bitcoin", "ether"}),
    (r"(?i)Antminer S[0-9]+", False, {"antminer s"}),
    (r"[kK]ey", True, {"key"}),
    (r"\x{212A}ey", True, {"key"}),  # the Kelvin sign folds with k
    (r"比特币", True, None),  # no ASCII member: ASCII text never holds it, other text is not read
    (r"[a-c]x", True, {"x"}),
])
def test_required_texts_of_a_case_insensitive_pattern(pattern: str, ignore_case: bool, texts: set[str] | None) -> None:
    assert required_texts(pattern, ignore_case) == (None if texts is None else Required(frozenset(texts), True))


@given(st.sampled_from(PATTERNS), st.booleans(), st.data())
def test_every_text_a_pattern_matches_in_holds_one(pattern: str, ignore_case: bool, data: st.DataObject) -> None:
    """A text drawn to hold a match (Python's reading of the pattern, then RE2's search
    decides) holds one of the required texts; a case-insensitive pattern's, lower-cased,
    where the text is ASCII."""
    required = required_texts(pattern, ignore_case)
    assume(required is not None)
    assert required is not None and required.texts
    flags = "(?i)" if ignore_case and not pattern.startswith("(?i)") else ""
    text = data.draw(st.one_of(st.from_regex(flags + pattern), st.text(max_size=8),
                               st.from_regex(flags + pattern).map(str.swapcase)))
    assume(regex_search(compile_regex(pattern, ignore_case), text))
    if required.folded:
        assume(text.isascii())
        assert any(t in text.lower() for t in required.texts), (pattern, text, required)
    else:
        assert any(t in text for t in required.texts), (pattern, text, required)


@pytest.mark.parametrize("pattern", [r"\x+4", r"\x{4_1}", r"\x4", "\\x\u0664\u0661", "\\\u20ac", r"\x{110000}"])
def test_escapes_re2_rejects_are_outside_the_subset(pattern: str) -> None:
    from dsl.regex_syntax import check_supported

    with pytest.raises(ValueError):
        compile_regex(pattern)
    assert check_supported(pattern, False)
