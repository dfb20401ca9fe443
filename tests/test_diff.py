"""`policy diff` (issue 14, spec section 8): two versions of a policy set compared."""

from __future__ import annotations

from dsl.analysis import formula as FM
from dsl.analysis.solver import Engine
from dsl.api import compile_paths


def _model(tmp_path, text):
    (tmp_path / "p.policy").write_text(text, encoding="utf-8")
    model, _, diags = compile_paths([tmp_path])
    assert model is not None, diags
    return model


def test_prior_in_reads_alike_in_z3_and_concretely(tmp_path):
    ps = _model(tmp_path, "policy p\nrule r: block category 'X'\n")
    eng = Engine(ps)
    for lo, hi in [(0, 1), (2, 3), (3, None)]:
        answer = eng.solve(FM.all_of(FM.Applies("p.r"), FM.PriorIn(lo, hi)))
        assert answer.status == "sat" and answer.witness is not None
        assert lo <= answer.witness.prior_violations and (hi is None or answer.witness.prior_violations < hi)
        assert FM.evaluate(FM.PriorIn(lo, hi), ps, answer.witness.listing, answer.witness.at,
                           answer.witness.prior_violations)
    assert eng.solve(FM.all_of(FM.PriorIn(2, 3), FM.Not(FM.PriorIn(1, None)))).status == "unsat"
