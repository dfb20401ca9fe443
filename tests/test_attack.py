"""The attack on assertions (dsl.testing.attack): candidates drawn from the vocabulary with
a seeded random source, deterministic and distinct; a claim false on a small part of the
vocabulary is still broken; ``--attack N`` sets the effort; the same generator driven by
Hypothesis (more examples under the ``thorough`` profile) never breaks a proved claim of
policies/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from test_testing_support import ROOT, FakeResult, write_tree

from dsl.api import compile_paths
from dsl.checking.passes import build
from dsl.cli import main
from dsl.evaluate.policies import Policies
from dsl.model import PolicySet
from dsl.syntax import ast as A
from dsl.syntax import parse
from dsl.testing import InternalError, run_tests
from dsl.testing import run as run_command
from dsl.testing.attack import attack, candidates, counterexamples
from dsl.testing.claims import Claim
from dsl.testing.scope import file_scope, restrict
from dsl.testing.vocab import Vocabulary

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Many categories and phrases; the one rule that blocks needs a category, a phrase and a
# price above a bound together, from a date: a small part of what the vocabulary offers.
NARROW = """
policy shop
  timezone "Asia/Shanghai"

rule toys:      flag category 'Toys' and mentions 'plush'
rule books:     flag category 'Books' and mentions 'signed'
rule garden:    flag category 'Garden' and mentions 'hose'
rule kitchen:   flag category 'Kitchen' and mentions 'knife'
rule music:     flag category 'Music' and mentions 'vinyl'
rule sports:    flag category 'Sports' and mentions 'racket'
rule cameras:   flag category 'Cameras' and price > 10
rule miners:    from 2021-10-08 block category 'Blockchain Miners' and mentions 'antminer' and price > 500
"""

NEVER_BLOCKED = 'assert "nothing is ever blocked" never block not category \'Museum\'\n'


def claim_of(root: Path, policies: str, assertion: str) -> tuple[Claim, Vocabulary]:
    write_tree(root, {"shop.policy": policies, "shop_test.policy": assertion})
    model, loaded, diags = compile_paths([root])
    assert model is not None, diags
    (a,) = [s for s in loaded.test_files[0].statements if isinstance(s, A.Assertion)]
    claim = Claim.of(model, Policies(model), a, SHANGHAI)
    return claim, Vocabulary.of(model, [claim.expr], [claim.start, claim.end])


def test_a_claim_false_on_a_small_part_of_the_vocabulary_is_broken(tmp_path: Path) -> None:
    """Only a listing in 'Blockchain Miners' that mentions 'antminer', priced above 500,
    at or after 8 October breaks the claim: one combination of categories, phrases,
    prices and instants among many."""
    claim, vocab = claim_of(tmp_path, NARROW, NEVER_BLOCKED)
    found = attack(claim, vocab, examples=200)
    assert found is not None and claim.broken_by(found)
    assert "antminer" in json.dumps(found.listing).lower() and found.listing["price"] > 500


def test_a_proof_the_attack_breaks_is_an_internal_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shop.policy": NARROW, "shop_test.policy": NEVER_BLOCKED})
    model, loaded, _ = compile_paths([tmp_path])
    assert model is not None
    with pytest.raises(InternalError, match="nothing is ever blocked"):
        run_tests(model, loaded, prover=lambda ps, **kw: FakeResult("pass"))
    # --attack 0: no attack, the (wrong) proof stands
    report = run_tests(model, loaded, prover=lambda ps, **kw: FakeResult("pass"), attack_examples=0)
    assert report.failed == 0


def test_candidates_are_deterministic_and_distinct(tmp_path: Path) -> None:
    claim, vocab = claim_of(tmp_path, NARROW, NEVER_BLOCKED)
    first = candidates(claim, vocab, 150)
    again = candidates(claim, vocab, 150)
    assert [c.to_dict() for c in first] == [c.to_dict() for c in again]
    keys = {json.dumps(c.to_dict(), sort_keys=True) for c in first}
    assert len(first) == 150 and len(keys) == 150
    assert candidates(claim, vocab, 150, seed=1) != first


def test_matches_is_aimed_at_with_texts_of_the_regex(tmp_path: Path) -> None:
    policies = ('policy p\n  timezone "UTC"\n'
                "rule r: from 2021-01-01 block title matches /^S[0-9]{2}j$/ and category 'Miners'\n")
    claim, vocab = claim_of(tmp_path, policies, "assert \"a\" never block title matches /^S[0-9]{2}j$/\n")
    found = attack(claim, vocab, examples=200)
    assert found is not None and claim.broken_by(found)


def test_identical_claims_are_attacked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dsl.testing.runner as runner

    calls: list[Any] = []
    real = runner.attack
    monkeypatch.setattr(runner, "attack", lambda *a: calls.append(a) or real(*a))
    twice = ('assert "one" never block not mentions \'antminer\'\n'
             'assert "two" never block not mentions \'antminer\'\n'
             'assert "three" never block price <= 500\n')
    write_tree(tmp_path, {"shop.policy": NARROW, "shop_test.policy": twice})
    model, loaded, _ = compile_paths([tmp_path])
    assert model is not None
    report = run_tests(model, loaded, prover=lambda ps, **kw: FakeResult("pass"))
    assert report.failed == 0 and len(report.results) == 3
    assert len(calls) == 2


def test_attack_option_of_the_command(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shop.policy": NARROW, "shop_test.policy": NEVER_BLOCKED})
    out = json.loads(run_command([tmp_path], fmt="json", prover=lambda ps, **kw: FakeResult("undecided"),
                                 attack=200).text)
    assert out[0]["outcome"] == "fail" and "a generated listing refutes it" in out[0]["problems"][-1]
    out = json.loads(run_command([tmp_path], fmt="json", prover=lambda ps, **kw: FakeResult("undecided"),
                                 attack=0).text)
    assert out[0]["outcome"] == "undecided"
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--attack", "-1"])
    assert result.exit_code == 2 and "--attack" in result.output


# ------------------------------------------- the same generator, driven by Hypothesis


def _proved_claims() -> list[Claim]:
    """Every assertion of the suites under policies/ (all of them proved)."""
    model, loaded, _ = compile_paths([ROOT / "policies"])
    assert model is not None
    known = tuple(p.name for p in model.policies)
    out = []
    for f in loaded.test_files:
        ps: PolicySet = restrict(model, file_scope(f, known))
        policies = Policies(ps)
        for s in f.statements:
            if isinstance(s, A.Assertion):
                out.append(Claim.of(ps, policies, s, ps.policies[0].tz))
    return out


CLAIMS = _proved_claims()


@given(st.data())
def test_no_drawn_listing_breaks_a_proved_claim_of_policies(data: st.DataObject) -> None:
    """Under the ``thorough`` profile (HYPOTHESIS_PROFILE=thorough) this searches far
    longer than `policy test`'s attack."""
    claim = data.draw(st.sampled_from(CLAIMS))
    vocab = Vocabulary.of(claim.ps, [claim.expr], [claim.start, claim.end])
    cx = data.draw(counterexamples(claim, vocab))
    assert not claim.broken_by(cx), cx.to_dict()


@given(st.data())
def test_the_hypothesis_driven_generator_reaches_regex_texts(data: st.DataObject) -> None:
    file, _ = parse('policy p\n  timezone "UTC"\nrule r: block title matches /ab+c/\n', "p.policy")
    model, _ = build([file], {})
    assert model is not None
    expr = next(r.condition for r in model.rules)
    claim = Claim(model, Policies(model), "never", "block", expr, ZoneInfo("UTC"), None, None)
    cx = data.draw(counterexamples(claim, Vocabulary.of(model, [expr])))
    assert claim.broken_by(cx)
