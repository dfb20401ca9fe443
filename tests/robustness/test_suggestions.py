""""Did you mean" stays cheap whatever the misspelled word (issue 10, item 7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dsl.diagnostics as D
from dsl.diagnostics import MAX_SUGGESTION_LENGTH, did_you_mean


def test_typos_are_still_found() -> None:
    assert did_you_mean("escalte", ["escalate", "warn"]) == "escalate"
    assert did_you_mean("Miners", ["miners", "coins"]) == "miners"
    assert did_you_mean("ab", ["ba", "xx"]) == "ba"
    assert did_you_mean("abcdef", ["abcxyz"]) is None
    assert did_you_mean("x", []) is None


def test_a_megabyte_word_is_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = D._edit_distance
    monkeypatch.setattr(D, "_edit_distance", lambda a, b, limit: calls.append((a, b)) or real(a, b, limit))
    word = "bitcoin" * 150_000
    assert did_you_mean(word, [word[:-1] + "x", "bitcoin", "escalate"]) is None
    assert calls == []


def test_candidates_of_another_length_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[str] = []
    real = D._edit_distance
    monkeypatch.setattr(D, "_edit_distance", lambda a, b, limit: compared.append(b) or real(a, b, limit))
    many = [f"rule-{i}" * (i % 20 + 1) for i in range(2000)]
    assert did_you_mean("escalte", [*many, "escalate"]) == "escalate"
    assert all(abs(len(c) - len("escalte")) <= 2 for c in compared)


def test_long_candidates_stop_early() -> None:
    # the same length, nothing in common: given up after a few rows, not 100 x 100 cells
    assert D._edit_distance("a" * MAX_SUGGESTION_LENGTH, "b" * MAX_SUGGESTION_LENGTH, 3) == 4


def _osa(a: str, b: str) -> int:
    """The plain optimal string alignment distance, without a limit: the oracle."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


@given(st.text("abc", max_size=12), st.text("abc", max_size=12), st.integers(1, 3))
def test_the_limit_changes_no_answer_within_it(a: str, b: str, limit: int) -> None:
    assert D._edit_distance(a, b, limit) == min(_osa(a, b), limit + 1)
