"""Explanations: what applied and why, what did not and the first condition that failed,
overrides and the penalty choice, in the author's words."""

from __future__ import annotations

import pytest

import dsl
from conformance import CORPUS

DECISIONS = CORPUS / "decisions"
pytestmark = pytest.mark.skipif(not DECISIONS.exists(), reason="../shared/conformance is not beside the repository")


def test_not_yet_in_force_in_the_authors_words() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    listing = {"category": "Electronics > Blockchain Miners", "title": "Antminer S19", "platform": "taobao"}
    decision = policies.decide(listing, at="2021-10-12")
    text = decision.explain()
    assert text.startswith("block: the listing is blocked at 2021-10-12T00:00:00 (local time in each "
                           "policy's timezone); 1 rule applied.")
    assert ("miners-late (block): not yet in force; it applies from 2021-10-15 00:00 Asia/Shanghai "
            "(at is 2021-10-12 00:00 there)") in text
    assert "scope: platform in ['taobao', 'xianyu', 'aliexpress', 'lazada'] (platform is 'taobao')" in text
    assert "category 'Blockchain Miners' (category is 'Electronics > Blockchain Miners')" in text
    assert "in force from 2021-10-08 00:00 Asia/Shanghai" in text
    # Rules that share no category or text with the listing are named, not detailed.
    assert "3 other rules share no category or text with this listing: accessories, coins, guides" in text
    # The compiled decision explains itself by replaying through the reference evaluator.
    assert text == policies.decide_reference(listing, at="2021-10-12").explain()
    assert text == policies.explain(listing, at="2021-10-12")


def test_scope_failure_and_set_names() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    text = policies.decide({"category": "Blockchain Miners", "title": "bitcoin", "platform": "amazon"},
                           at="2021-10-20").explain()
    assert "allow: the listing is allowed" in text and "no rule applied" in text
    assert ("miners (block): outside the policy's scope: platform in ['taobao', 'xianyu', 'aliexpress', 'lazada'] "
            "does not hold (platform is 'amazon')") in text
    assert "coins (block): outside the policy's scope" in text


def test_mentions_name_the_phrases_found_and_the_penalty_choice() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    text = policies.decide({"category": "Software", "title": "Bitcoin mining tutorial", "platform": "xianyu"},
                           at="2021-10-20", prior_violations=1).explain()
    assert "mentions any cryptocurrencies (found 'bitcoin' in the title, description or tags)" in text
    assert "Penalty: remove listing, deduct 6 points (step 2 of 4 of ladder escalate of coins; prior violations: 1)" in text
    assert "also proposed: remove listing, deduct 6 points (step 2 of ladder escalate of guides): as severe; coins comes first by rule id" in text
    assert "Crypto-related software, tutorials and strategies may not be sold" in text


def test_overrides_and_exceptions() -> None:
    policies = dsl.load([DECISIONS / "exceptions"])
    text = policies.decide({"category": "Blockchain Miners", "platform": "aliexpress", "seller": "S-200", "price": 6000},
                           at="2021-11-01").explain()
    assert "flag: the listing is flagged for review" in text
    assert "miners (block) applied, but is lifted by the exception licensed-export" in text
    assert "seller in licensed (seller is 'S-200')" in text
    assert "price > 5000 (price is 6000)" in text
    typed = dsl.load([DECISIONS / "absent-and-types"])
    text = typed.decide({"category": "Batteries", "certificate": "UN38.3", "price": "abc"}, at="2022-01-01").explain()
    assert "cells (block): the exception holds: unless certificate exists (certificate is 'UN38.3')" in text
    assert "Input warnings:\n  - price: expected a number, got the text 'abc'" in text
    text = typed.decide({"category": "Drones", "seller": {"country": "CN"}}, at="2022-01-01").explain()
    assert "drones (block): not seller.country == 'CN' does not hold (seller.country is 'CN')" in text


def test_multi_policy_sets_use_qualified_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.policy").write_text("policy a\nrule r: from 2030-01-01 block category 'X'\n")
    (tmp_path / "b.policy").write_text("policy b\nrule r: until 2020-01-01 flag category 'X'\n")
    text = dsl.load([tmp_path]).decide({"category": "X"}, at="2025-01-01").explain()
    assert "a.r (block): not yet in force; it applies from 2030-01-01 00:00 UTC" in text
    assert "b.r (flag): no longer in force; it applied until 2020-01-01 00:00 UTC" in text


def test_huge_values_are_cut_short() -> None:
    policies = dsl.load([DECISIONS / "absent-and-types"])
    text = policies.decide({"category": "Drones", "seller": {"country": "X" * 1_000_000}}, at="2022-01-01").explain()
    assert len(text) < 2000 and "(1000000 characters)" in text


def test_which_alternatives_of_an_or_held(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "o.policy").write_text(
        "policy o\nset coins = ['bitcoin', 'ether']\n"
        "rule r: block category 'Miners' or mentions any coins or price > 10\n")
    text = dsl.load([tmp_path]).decide({"category": "Miners", "title": "Ether"}, at="2022-01-01").explain()
    assert ("category 'Miners' or mentions any coins or price > 10, by: category 'Miners' (category is 'Miners'); "
            "mentions any coins (found 'ether' in the title, description or tags)") in text
