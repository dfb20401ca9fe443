"""Explanations: what applied and why, what did not and the first condition that failed,
overrides and the penalty choice, in the author's words."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from conformance import CORPUS

import dsl
import dsl.evaluate.explain
import dsl.text
from dsl.cli import main

DECISIONS = CORPUS / "decisions"
pytestmark = pytest.mark.skipif(not DECISIONS.exists(), reason="../shared/conformance is not beside the repository")


def test_not_yet_in_force_in_the_authors_words() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    listing = {"category": "Electronics > Blockchain Miners", "title": "Antminer S19", "platform": "taobao"}
    decision = policies.decide(listing, at="2021-10-12")
    text = policies.explain_decision(decision, listing)
    assert text.startswith("block: the listing is blocked at 2021-10-12T00:00:00 (local time in each "
                           "policy's timezone); 1 rule applied.")
    assert ("miners-late (block): not yet in force; it applies from 2021-10-15 00:00 Asia/Shanghai "
            "(at is 2021-10-12 00:00 there)") in text
    assert "scope: platform in ['taobao', 'xianyu', 'aliexpress', 'lazada'] (platform is 'taobao')" in text
    assert "category 'Blockchain Miners' (category is 'Electronics > Blockchain Miners')" in text
    assert "in force from 2021-10-08 00:00 Asia/Shanghai" in text
    # Rules that share no category or text with the listing are named, not detailed.
    assert "3 other rules share no category or text with this listing: accessories, coins, guides" in text
    # The policy set explains a decision of either evaluator the same way, and the
    # explanation module alone (the reference evaluator and fresh phrase matchers) agrees.
    assert text == policies.explain_decision(policies.decide_reference(listing, at="2021-10-12"), listing)
    assert text == policies.explain(listing, at="2021-10-12")
    assert text == dsl.evaluate.explain.explain(policies.policy_set, listing, at="2021-10-12")


def test_scope_failure_and_set_names() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    text = policies.explain({"category": "Blockchain Miners", "title": "bitcoin", "platform": "amazon"},
                           at="2021-10-20")
    assert "allow: the listing is allowed" in text and "no rule applied" in text
    assert ("miners (block): outside the policy's scope: platform in ['taobao', 'xianyu', 'aliexpress', 'lazada'] "
            "does not hold (platform is 'amazon')") in text
    assert "coins (block): outside the policy's scope" in text


def test_mentions_name_the_phrases_found_and_the_penalty_choice() -> None:
    policies = dsl.load([DECISIONS / "alibaba-crypto"])
    text = policies.explain({"category": "Software", "title": "Bitcoin mining tutorial", "platform": "xianyu"},
                           at="2021-10-20", prior_violations=1)
    assert "mentions any cryptocurrencies (found 'bitcoin' in the title, description or tags)" in text
    assert ("Penalty: remove listing, deduct 6 points (step 2 of 4 of ladder escalate of coins; prior violations: 1)"
            in text)
    assert ("also proposed: remove listing, deduct 6 points (step 2 of ladder escalate of guides): as severe; "
            "coins comes first by rule id") in text
    assert "Crypto-related software, tutorials and strategies may not be sold" in text


def test_overrides_and_exceptions() -> None:
    policies = dsl.load([DECISIONS / "exceptions"])
    listing = {"category": "Blockchain Miners", "platform": "aliexpress", "seller": "S-200", "price": 6000}
    text = policies.explain(listing, at="2021-11-01")
    assert "flag: the listing is flagged for review" in text
    assert "miners (block) applied, but is lifted by the exception licensed-export" in text
    assert "seller in licensed (seller is 'S-200')" in text
    assert "price > 5000 (price is 6000)" in text
    typed = dsl.load([DECISIONS / "absent-and-types"])
    text = typed.explain({"category": "Batteries", "certificate": "UN38.3", "price": "abc"}, at="2022-01-01")
    assert "cells (block): the exception holds: unless certificate exists (certificate is 'UN38.3')" in text
    assert "Input warnings:\n  - price: expected a number, got the text 'abc'" in text
    text = typed.explain({"category": "Drones", "seller": {"country": "CN"}}, at="2022-01-01")
    assert "drones (block): not seller.country == 'CN' does not hold (seller.country is 'CN')" in text


def test_multi_policy_sets_use_qualified_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.policy").write_text("policy a\nrule r: from 2030-01-01 block category 'X'\n")
    (tmp_path / "b.policy").write_text("policy b\nrule r: until 2020-01-01 flag category 'X'\n")
    text = dsl.load([tmp_path]).explain({"category": "X"}, at="2025-01-01")
    assert "a.r (block): not yet in force; it applies from 2030-01-01 00:00 UTC" in text
    assert "b.r (flag): no longer in force; it applied until 2020-01-01 00:00 UTC" in text


def test_huge_values_are_cut_short() -> None:
    policies = dsl.load([DECISIONS / "absent-and-types"])
    text = policies.explain({"category": "Drones", "seller": {"country": "X" * 1_000_000}}, at="2022-01-01")
    assert len(text) < 2000 and "(1000000 characters)" in text


def test_which_alternatives_of_an_or_held(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "o.policy").write_text(
        "policy o\nset coins = ['bitcoin', 'ether']\n"
        "rule r: block category 'Miners' or mentions any coins or price > 10\n")
    text = dsl.load([tmp_path]).explain({"category": "Miners", "title": "Ether"}, at="2022-01-01")
    assert ("category 'Miners' or mentions any coins or price > 10, by: category 'Miners' (category is 'Miners'); "
            "mentions any coins (found 'ether' in the title, description or tags)") in text


# ---------------------------------------------------------------- which rules are detailed (issue 9, item 11)

TWO_MARKETS = {
    "alibaba.policy": ('policy alibaba\ntimezone "Asia/Shanghai"\nscope platform == \'taobao\'\n'
                       "rule coins: block mentions 'bitcoin'\n"
                       "rule miners: block category 'Miners'\n"
                       "rule pricey: flag price > 1000\n"
                       "rule named: flag title contains 'antminer'\n"),
    "amazon.policy": ("policy amazon\nscope platform == 'amazon'\n"
                      "rule hose: flag category 'Garden' and price > 5\n"
                      "rule coins: flag mentions 'bitcoin'\n"),
}


def _two_markets(tmp_path) -> dsl.Policies:  # type: ignore[no-untyped-def]
    for name, text in TWO_MARKETS.items():
        (tmp_path / name).write_text(text)
    return dsl.load([tmp_path])


def test_only_rules_that_share_a_category_or_a_text_match_are_detailed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policies = _two_markets(tmp_path)
    text = policies.explain({"platform": "amazon", "category": "Garden", "title": "Hose", "price": 2000},
                            at="2022-01-01")
    assert "flag: the listing is flagged" in text and "amazon.hose (flag)" in text
    # No Alibaba rule concerns a garden hose: none is detailed ("outside scope" for each).
    assert "outside the policy's scope" not in text
    assert ("5 other rules share no category or text with this listing: alibaba.coins, alibaba.miners, "
            "alibaba.named, alibaba.pricey, amazon.coins") in text
    # A text match, or the category, makes a rule that did not apply worth a line.
    text = policies.explain({"platform": "amazon", "category": "Miners", "title": "Bitcoin Antminer"},
                            at="2022-01-01")
    assert "alibaba.coins (block): outside the policy's scope: platform == 'taobao' does not hold" in text
    assert "alibaba.miners (block): outside the policy's scope" in text
    assert "alibaba.named (flag): outside the policy's scope" in text
    assert "alibaba.pricey" in text.split("Did not apply")[1].split("\n\n")[1]  # named among the others only
    assert "alibaba.pricey (flag)" not in text


def test_why_not_gives_every_condition_of_one_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policies = _two_markets(tmp_path)
    listing = {"platform": "amazon", "category": "Garden", "title": "Hose", "price": 2000}
    text = policies.explain(listing, at="2022-01-01", why_not="pricey")  # a local id, unambiguous
    assert text.endswith(
        "Why not alibaba.pricey (flag): it did not apply: 1 condition failed.\n"
        "  - fails: outside the policy's scope: platform == 'taobao' does not hold (platform is 'amazon')\n"
        "  - holds: price > 1000 (price is 2000)\n")
    decision = policies.decide(listing, at="2022-01-01")
    assert policies.explain_decision(decision, listing, why_not="alibaba.pricey") == text  # the qualified id
    assert "Why not amazon.hose (flag): it applied.\n  - holds: scope: platform == 'amazon'" in \
        policies.explain_decision(decision, listing, why_not="hose")
    # A decision of the reference evaluator is explained the same way.
    reference = policies.decide_reference(listing, at="2022-01-01")
    assert policies.explain_decision(reference, listing, why_not="pricey") == text


@pytest.mark.parametrize("name, message", [
    ("coins", "why_not: 'coins' names a rule in several policies (alibaba.coins, amazon.coins); give the qualified id"),
    ("pricy", "why_not: no rule 'pricy' in the policy set; did you mean 'pricey'?"),
    ("alibaba.nothing", "why_not: no rule 'alibaba.nothing' in the policy set"),
    ("", "why_not: expected a rule id"),
])
def test_why_not_an_unknown_or_ambiguous_rule_is_a_user_error(tmp_path, name: str, message: str) -> None:  # type: ignore[no-untyped-def]
    policies = _two_markets(tmp_path)
    with pytest.raises(dsl.InputError) as info:
        policies.explain({"title": "x"}, at="2022-01-01", why_not=name)
    assert str(info.value).startswith(message) and info.value.field == "why_not"
    with pytest.raises(dsl.InputError):
        policies.resolve_rule(name)


def test_a_huge_why_not_is_cut_short_in_its_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policies = _two_markets(tmp_path)
    with pytest.raises(dsl.InputError) as info:
        policies.explain({"title": "x"}, at="2022-01-01", why_not="x" * 100_000)
    message = info.value.message
    assert len(message) < 200 and info.value.field == "why_not"
    assert message.startswith("why_not: no rule 'xxxx") and "… (100000 characters) in the policy set" in message


def test_an_overridden_rule_under_why_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "o.policy").write_text("policy o\nrule coins: block mentions 'bitcoin'\n"
                                       "rule museum: allow mentions 'museum' overrides coins\n")
    text = dsl.load([tmp_path]).explain({"title": "museum bitcoin"}, at="2022-01-01", why_not="coins")
    assert "Why not coins (block): it applied, but is lifted by the exception museum." in text


# ---------------------------------------------------------------- cost (issue 10, item 5)


def test_many_phrases_against_a_large_title_use_the_one_pass_matcher(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """10,000 phrases against a 240 KB title: the explanation finds the phrases through the
    decision's Aho-Corasick matcher (one pass over the text), never phrase by phrase, and
    names the right ones."""
    words = [f"w{n:05d}x" for n in range(10_000)]
    rules = "\n".join(f"rule r{n}: flag mentions '{w}'" for n, w in enumerate(words[:500]))
    (tmp_path / "many.policy").write_text(
        "policy many\nset words = [" + ", ".join(f"'{w}'" for w in words) + "]\n"
        "rule all: block mentions any words\n" + rules + "\n")
    policies = dsl.load([tmp_path])
    filler = "lorem ipsum dolor sit amet " * 9_000  # about 240 KB
    title = filler + "w00007x and w09999x " + filler

    def phrase_by_phrase(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("an explanation searched for a phrase on its own")
    monkeypatch.setattr(dsl.evaluate.explain, "mentions", phrase_by_phrase)
    monkeypatch.setattr(dsl.text, "mentions", phrase_by_phrase)
    decision = policies.decide({"title": title}, at="2022-01-01")
    text = policies.explain_decision(decision, {"title": title}, why_not="r8")
    assert decision.rules == ("many.all", "many.r7")
    assert "mentions any words (found 'w00007x', 'w09999x' in the title, description or tags)" in text
    assert "r7 (flag)" in text and "499 other rules share no category or text" in text
    assert "Why not r8 (flag): it did not apply: 1 condition failed.\n" \
           "  - fails: mentions 'w00008x' does not hold (not found in the title, description or tags)" in text
    # The reference evaluator decides phrase by phrase (it is the oracle), but its decisions
    # are explained through a matcher too.
    monkeypatch.undo()
    small = {"title": filler[:20_000] + " w00007x and w09999x"}
    ref = policies.decide_reference(small, at="2022-01-01")
    monkeypatch.setattr(dsl.evaluate.explain, "mentions", phrase_by_phrase)
    monkeypatch.setattr(dsl.text, "mentions", phrase_by_phrase)
    assert policies.explain_decision(ref, small, why_not="r8") == policies.explain(small, at="2022-01-01",
                                                                                  why_not="r8") == text


def test_a_policy_scope_does_not_make_every_rule_relevant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "e.policy").write_text("policy e\nscope category 'Electronics'\n"
                                       "rule coins: block mentions 'bitcoin'\n"
                                       "rule drones: flag category 'Drones'\n")
    text = dsl.load([tmp_path]).explain({"category": "Electronics > Phones", "title": "Phone"}, at="2022-01-01")
    assert "Did not apply" not in text
    assert "2 other rules share no category or text with this listing: coins, drones" in text


# ---------------------------------------------------------------- at the ends of the calendar


@pytest.mark.parametrize("zone, at, words", [
    ("Asia/Shanghai", "9999-12-31T23:59:59Z", "at is 9999-12-31 23:59:59 UTC, after the year 9999 in Asia/Shanghai"),
    ("Asia/Shanghai", dt.datetime.max.replace(tzinfo=dt.UTC),
     "at is 9999-12-31 23:59:59.999999 UTC, after the year 9999 in Asia/Shanghai"),
    ("America/New_York", "0001-01-01T00:00:00Z", "at is 0001-01-01 00:00 UTC, before the year 1 in America/New_York"),
    ("America/New_York", dt.datetime.min.replace(tzinfo=dt.UTC),
     "at is 0001-01-01 00:00 UTC, before the year 1 in America/New_York"),
])
def test_an_at_beyond_the_calendar_in_a_rules_zone_is_explained_in_utc(tmp_path, zone: str, at: object,  # type: ignore[no-untyped-def]
                                                                       words: str) -> None:
    """``decide`` accepts an instant whose local time in a rule's timezone is outside the
    calendar (years 1 to 9999); the explanation gives that ``at`` in UTC, saying so, where
    it overflowed."""
    (tmp_path / "z.policy").write_text(f'policy z\ntimezone "{zone}"\n'
                                       "rule old: until 2000-01-01 block mentions 'bitcoin'\n"
                                       "rule new: from 2030-01-01 flag mentions 'bitcoin'\n")
    policies = dsl.load([tmp_path])
    listing = {"title": "bitcoin"}
    decision = policies.decide(listing, at=at)
    text = policies.explain(listing, at=at)
    assert text == policies.explain_decision(policies.decide_reference(listing, at=at), listing)
    assert f"00:00 {zone} ({words})" in text  # both rules are detailed: each says it
    assert text.count(words) == 2
    # policy eval --explain writes it, as without --explain (exit 0).
    (tmp_path / "in.jsonl").write_text('{"title": "bitcoin"}\n')
    at_text = decision.to_dict()["at"]
    for extra in ([], ["--explain"]):
        result = CliRunner().invoke(main, ["eval", str(tmp_path / "z.policy"), "--input", str(tmp_path / "in.jsonl"),
                                           "--at", at_text, *extra])
        assert result.exit_code == 0, result.output
        line = json.loads(result.output)
        assert line["effect"] == decision.effect and (not extra or words in line["explanation"])
