"""`policy diff` (issue 14, spec section 8): two versions of a policy set compared, on the
example policies against edited copies, from git, with a catalogue, and on generated
pairs of small sets (every witness separates them; "equivalent" holds on random inputs)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import listings, policy_files

import dsl
from dsl.analysis import formula as FM
from dsl.analysis.solver import Engine
from dsl.api import compile_paths
from dsl.checking.passes import build
from dsl.cli import main
from dsl.evaluate.outcome import InputError
from dsl.evaluate.reference import decide_reference
from dsl.model import PolicySet
from dsl.syntax import ast as A
from dsl.syntax import parse
from dsl.syntax.format import format_file
from dsl.versions import KINDS, Diff, compare, parse_kinds, render
from dsl.versions.catalogue import count_catalogue
from dsl.versions.core import Replay
from dsl.versions.kinds import classify

ROOT = Path(__file__).resolve().parents[1]
CRYPTO = Path("alibaba/crypto-2021.policy")
IVORY = Path("uk-ivory/ivory-act-2018.policy")


def _model(tmp_path: Path, text: str) -> PolicySet:
    (tmp_path / "p.policy").write_text(text, encoding="utf-8")
    model, _, diags = compile_paths([tmp_path])
    assert model is not None, diags
    return model


def _compare(tmp_path: Path, old: str, new: str) -> Diff:
    """``compare`` of two one-file sets, ``old`` and ``new`` the text of their files."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return compare(_model(tmp_path / "a", old), _model(tmp_path / "b", new))


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(ROOT / "policies", old)
    shutil.copytree(ROOT / "policies", new)
    return old, new


def _edit(root: Path, rel: Path, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _replays(d: Diff, old: Path, new: Path) -> None:
    """Every example in the report separates the two versions as it says, through the
    reference evaluator too."""
    a, b = dsl.load(old), dsl.load(new)
    for ex in [c.example for c in d.changes] + [r.example for r in d.rules if r.example is not None]:
        da = a.decide(ex.listing, at=ex.at, prior_violations=ex.prior_violations)
        db = b.decide(ex.listing, at=ex.at, prior_violations=ex.prior_violations)
        assert classify(a._ps, da, b._ps, db) == ex.kind


def test_prior_in_reads_alike_in_z3_and_concretely(tmp_path: Path) -> None:
    ps = _model(tmp_path, "policy p\nrule r: block category 'X'\n")
    eng = Engine(ps)
    for lo, hi in [(0, 1), (2, 3), (3, None)]:
        answer = eng.solve(FM.all_of(FM.Applies("p.r"), FM.PriorIn(lo, hi)))
        assert answer.status == "sat" and answer.witness is not None
        assert lo <= answer.witness.prior_violations and (hi is None or answer.witness.prior_violations < hi)
        assert FM.evaluate(FM.PriorIn(lo, hi), ps, answer.witness.listing, answer.witness.at,
                           answer.witness.prior_violations)
    assert eng.solve(FM.all_of(FM.PriorIn(2, 3), FM.Not(FM.PriorIn(1, None)))).status == "unsat"


# ---------------------------------------------------------------- the example policies, edited


def test_same_set_is_equivalent_without_a_question(versions: tuple[Path, Path]) -> None:
    d = dsl.diff(*versions)
    assert d.equivalent and d.questions == 0 and not d.rules and d.exit_code() == 0


def test_dsl_diff_takes_what_dsl_load_returns(versions: tuple[Path, Path]) -> None:
    """docs/diff.md: a path, "REV:PATH", a Policies (dsl.load's; it raised TypeError, only
    its .policy_set was taken) or a PolicySet, mixed as one likes."""
    old, new = versions
    _edit(new, CRYPTO, "restrict listing for 30d", "restrict listing for 14d")
    by_path = dsl.diff(old, new)
    assert not by_path.equivalent
    for a, b in ((dsl.load(old), dsl.load(new)), (dsl.load(old), str(new)), (old, dsl.load(new).policy_set)):
        d = dsl.diff(a, b)
        assert [c.kind for c in d.changes] == [c.kind for c in by_path.changes], (type(a), type(b))
    assert dsl.diff(dsl.load(old), dsl.load(old)).equivalent
    with pytest.raises(TypeError, match="OLD: expected a path, 'REV:PATH', the Policies dsl.load returns"):
        dsl.diff(42, new)  # type: ignore[arg-type]


def test_a_reformat_is_equivalent(versions: tuple[Path, Path]) -> None:
    old, new = versions
    path = new / CRYPTO
    text = path.read_text(encoding="utf-8")
    path.write_text("# moved about\n\n\n" + dsl.format_source(text).replace("\n  ", "\n      "), encoding="utf-8")
    d = dsl.diff(old, new)
    assert d.equivalent, d.to_dict()


def test_a_renamed_set_is_equivalent(versions: tuple[Path, Path]) -> None:
    old, new = versions
    path = new / CRYPTO
    path.write_text(path.read_text(encoding="utf-8").replace("mining-rigs", "rigs"), encoding="utf-8")
    d = dsl.diff(old, new)
    assert d.equivalent and d.questions == 0 and not d.rules


def test_a_reworded_rule_changes_no_decision(versions: tuple[Path, Path]) -> None:
    old, new = versions
    _edit(new, CRYPTO, "Blockchain miners can no longer", "Blockchain miners may no longer")
    d = dsl.diff(old, new)
    assert d.equivalent and [(r.rule, r.status, r.alters) for r in d.rules] == [
        ("alibaba-crypto-2021.miners", "reworded", "no")]


def test_a_window_moved_by_a_day_has_a_witness_on_that_day(versions: tuple[Path, Path]) -> None:
    old, new = versions
    _edit(new, IVORY, "from 2025-01-28 block", "from 2025-01-29 block")
    d = dsl.diff(old, new)
    assert not d.equivalent and d.exit_code() == 1
    assert [c.kind for c in d.changes] == ["block→allow"]
    ex = d.changes[0].example
    assert ex.at.startswith("2025-01-28")  # London is on UTC in January
    assert ex.old.effect == "block" and ex.new.effect == "allow"
    assert [(r.rule, r.status, r.alters) for r in d.rules] == [("uk-ivory-act-2018.other-ivory", "changed", "yes")]
    _replays(d, old, new)


def test_an_exception_widened(versions: tuple[Path, Path]) -> None:
    old, new = versions
    _edit(new, IVORY, "item.made < 1975-01-01 and item.ivory_percent < 20",
          "item.made < 1980-01-01 and item.ivory_percent < 20")
    d = dsl.diff(old, new)
    assert {c.kind for c in d.changes} == {"block→allow"}
    listing = d.changes[0].example.listing
    assert "1975" <= listing["item"]["made"] < "1980"
    assert d.rules[0].rule == "uk-ivory-act-2018.s8-musical-instrument" and d.rules[0].alters == "yes"
    _replays(d, old, new)


def test_a_ladder_step_made_lighter(versions: tuple[Path, Path]) -> None:
    old, new = versions
    _edit(new, CRYPTO, "restrict listing for 30d", "restrict listing for 14d")
    d = dsl.diff(old, new)
    assert [c.kind for c in d.changes] == ["penalty-lighter"]
    ex = d.changes[0].example
    assert ex.prior_violations == 2
    assert ex.old.penalty is not None and ex.old.penalty.actions == ("restrict listing for 30d",)
    assert ex.new.penalty is not None and ex.new.penalty.actions == ("restrict listing for 14d",)
    assert {r.rule: r.alters for r in d.rules} == {"alibaba-crypto-2021.penalised": "yes"}
    assert d.exit_code(parse_kinds("block-allow")) == 0
    assert d.exit_code(parse_kinds("penalty-lighter")) == 1
    _replays(d, old, new)


def test_a_removed_rule_that_another_covers_is_equivalent(versions: tuple[Path, Path]) -> None:
    old, new = versions
    extra = "policy extra\n  scope platform == 'taobao'\nrule rigs: from 2021-10-09 block mentions 'antminer'\n"
    (old / "extra.policy").write_text(extra, encoding="utf-8")
    findings = dsl.check(old)
    assert any(f.code == "P301" and "extra.rigs" in f.message for f in findings)
    d = dsl.diff(old, new)
    assert d.equivalent, d.to_dict()
    assert [(r.rule, r.status, r.alters) for r in d.rules] == [("extra.rigs", "removed", "no")]


def test_penalty_actions_of_equal_severity(tmp_path: Path) -> None:
    d = _compare(tmp_path, "policy p\nrule r: block category 'X' penalty restrict listing for 30d\n",
                 "policy p\nrule r: block category 'X' penalty restrict selling for 30d\n")
    assert [c.kind for c in d.changes] == ["penalty-actions"]


def test_a_renamed_rule_is_a_removal_and_an_addition(tmp_path: Path) -> None:
    d = _compare(tmp_path, "policy p\nrule old-name: from 2021-01-01 block category 'X'\n",
                 "policy p\nrule new-name: from 2021-01-01 block category 'X'\n")
    assert d.equivalent
    assert [(r.rule, r.status, r.alters) for r in d.rules] == [("p.new-name", "added", "no"),
                                                               ("p.old-name", "removed", "no")]


def test_a_rule_on_a_date_shaped_string_removed_alters_decisions(tmp_path: Path) -> None:
    # '2021-10-15' compared with == is a string; the analysis took it for an impossible
    # value and called the removal "equivalent (proved)"
    d = _compare(tmp_path, "policy r\nrule a: block listed == '2021-10-15'\nrule c: flag price > 1\n",
                 "policy r\nrule c: flag price > 1\n")
    assert not d.equivalent
    assert {c.kind for c in d.changes} == {"block→allow", "block→flag"}
    assert [(r.rule, r.status, r.alters) for r in d.rules] == [("r.a", "removed", "yes")]


def test_an_undecided_question_is_p399_never_equivalent(tmp_path: Path) -> None:
    d = _compare(tmp_path, "policy p\nrule r: block title matches /^BITCOIN$/ and title mentions 'bitcoin'\n",
                 "policy p\nrule s: flag category 'Y'\n")
    assert not d.equivalent
    assert d.undecided and all(u.diagnostic().code == "P399" for u in d.undecided)
    assert d.exit_code() == 1


def test_other_field_declarations_are_p399_and_fail_every_fail_on(tmp_path: Path) -> None:
    d = _compare(tmp_path, "policy p\nfield k: number\nrule r: block k > 3\n",
                 "policy p\nfield k: number required\nrule r: block k > 3\n")
    assert not d.equivalent and not d.changes and [u.diagnostic().code for u in d.undecided] == ["P399"]
    # the question concerns every kind of change: a --fail-on gate cannot pass it
    assert d.exit_code() == 1 and d.exit_code(parse_kinds("block-allow")) == 1


# ---------------------------------------------------------------- the command line


def test_cli_formats_and_exit_codes(versions: tuple[Path, Path]) -> None:
    old, new = versions
    _edit(new, IVORY, "from 2025-01-28 block", "from 2025-01-29 block")
    runner = CliRunner()
    text = runner.invoke(main, ["diff", str(old), str(new)])
    assert text.exit_code == 1, text.output
    assert "block → allow:" in text.output
    assert "uk-ivory-act-2018.other-ivory (changed): alters decisions" in text.output
    data = runner.invoke(main, ["diff", str(old), str(new), "--format", "json"])
    report = json.loads(data.output)
    assert report["equivalent"] is False and report["changes"][0]["kind"] == "block→allow"
    assert report["changes"][0]["example"]["old"]["effect"] == "block"
    md = runner.invoke(main, ["diff", str(old), str(new), "--format", "markdown"])
    assert md.output.startswith("### Policy diff") and "| block → allow |" in md.output
    assert runner.invoke(main, ["diff", str(old), str(new), "--fail-on", "penalty-lighter"]).exit_code == 0
    assert runner.invoke(main, ["diff", str(old), str(new), "--fail-on", "block→allow"]).exit_code == 1
    assert runner.invoke(main, ["diff", str(old), str(new), "--fail-on", "flag-allow, block-allow"]).exit_code == 1
    bad = runner.invoke(main, ["diff", str(old), str(new), "--fail-on", "block-maybe"])
    assert bad.exit_code == 2 and "block→allow (block-allow)" in bad.output and "penalty-lighter" in bad.output
    same = runner.invoke(main, ["diff", str(old), str(old)])
    assert same.exit_code == 0 and "equivalent" in same.output


def test_markdown_keeps_backticks_and_pipes_inside_their_cell(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _model(tmp_path / "a", "policy p\nrule r: block title contains 'a`b|c'\n")
    b = _model(tmp_path / "b", "policy p\nrule r: flag title contains 'a`b|c'\n")
    md = render(compare(a, b), "markdown")
    row = next(line for line in md.splitlines() if line.startswith("| block → flag |"))
    # a code span fenced by more backticks than it holds; the pipe escaped
    assert '``{"title": "a`b\\|c"}``' in row
    assert len(row.replace("\\|", "").split("|")) == 8
    listings = tmp_path / "c.jsonl"
    listings.write_text('{"id": "x|`y", "title": "a`b|c"}\n', encoding="utf-8")
    d = compare(a, b)
    d = attrs.evolve(d, catalogue=count_catalogue(Replay(a, b), [str(listings)], ["p.r"], at="2021-01-01"))
    md = render(d, "markdown")
    assert "| block → flag | 1 | ``x\\|`y`` |" in md and "| `p.r` | 1 | ``x\\|`y`` |" in md


def test_cli_usage_errors(versions: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = versions
    runner = CliRunner()
    assert runner.invoke(main, ["diff", str(old)]).exit_code == 2
    missing = runner.invoke(main, ["diff", str(old), str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    no_catalogue = runner.invoke(main, ["diff", str(old), str(old), "--catalogue", str(tmp_path / "none.parquet")])
    assert no_catalogue.exit_code == 2
    assert f"--catalogue '{tmp_path / 'none.parquet'}': no such file" in no_catalogue.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.policy").write_text("policy b\nrule r: block category\n", encoding="utf-8")
    result = runner.invoke(main, ["diff", str(old), str(broken)])
    assert result.exit_code == 2 and "P100" in result.output


def test_catalogue_read_errors_name_the_catalogue_option(versions: tuple[Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message of the scan's reader about a catalogue's files names --catalogue (the
    option they were given to), never the scan's --input: a file missing, a glob matching
    nothing, an unknown extension, files of several formats, a file that cannot be read
    (opened, or while its batches are read)."""
    import duckdb

    from dsl.scan import source

    old, new = versions
    runner = CliRunner()

    def message(*files: Path | str) -> str:
        result = runner.invoke(main, ["diff", str(old), str(new), *(a for f in files for a in ("--catalogue", str(f)))])
        assert result.exit_code == 2, result.output
        assert "--input" not in result.output and "Traceback" not in result.output
        return result.output

    good = tmp_path / "good.csv"
    good.write_text("id,title\nA-1,lamp\n", encoding="utf-8")
    listings = tmp_path / "l.jsonl"
    listings.write_text('{"id": "A-1", "title": "lamp"}\n', encoding="utf-8")
    (tmp_path / "x.txt").write_text("", encoding="utf-8")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    assert f"--catalogue '{tmp_path / 'none.jsonl'}': no such file" in message(tmp_path / "none.jsonl")
    assert f"--catalogue '{tmp_path / '*.parquet.gz'}': no file matches" in message(tmp_path / "*.parquet.gz")
    assert f"--catalogue '{tmp_path / 'x.txt'}': cannot tell its format" in message(tmp_path / "x.txt")
    assert "--catalogue: the files are of several formats (csv, jsonl)" in message(good, listings)
    assert "--catalogue: cannot be read: " in message(corrupt)

    def unreadable(name: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", name)

    with monkeypatch.context() as m:
        m.setattr(source, "open", unreadable, raising=False)  # the JSON lines reader's open
        assert f"--catalogue '{listings}': cannot be read: Permission denied" in message(listings)

    def failing(con: Any, sql: str, batch_size: int) -> Any:
        con.close()
        yield from ()
        raise duckdb.IOException("IO Error: the disk went away")

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = tmp_path / "good.parquet"  # (a CSV file DuckDB stops on is read again, as the scan reads it)
    pq.write_table(pa.table({"id": ["A-1"], "title": ["lamp"]}), table)
    monkeypatch.setattr(source, "_arrow_batches", failing)
    assert f"--catalogue '{table}': cannot be read: IO Error: the disk went away" in message(table)  # its only file


def test_scan_input_errors_still_name_input(tmp_path: Path) -> None:
    """The scan's reader names --input unless told another option."""
    from dsl.checking.loader import UsageError
    from dsl.scan.source import open_source

    with pytest.raises(UsageError, match="^--input '.*none.csv': no such file$"):
        open_source([str(tmp_path / "none.csv")], batch_size=10, at_field=None, predicate=None)
    with pytest.raises(UsageError, match="^--catalogue '.*none.csv': no such file$"):
        open_source([str(tmp_path / "none.csv")], batch_size=10, at_field=None, predicate=None, option="--catalogue")


def test_fail_on_spellings() -> None:
    assert parse_kinds("block→allow,block->flag, allow - block") == {"block→allow", "block→flag", "allow→block"}
    assert parse_kinds(["penalty-lighter", "penalty heavier", "penalty-actions-changed"]) == {
        "penalty-lighter", "penalty-heavier", "penalty-actions"}
    with pytest.raises(ValueError, match="the kinds are"):
        parse_kinds("block→nothing")
    assert len(KINDS) == 9



@pytest.mark.parametrize("budget", ["nan", "inf", "1e400"])
def test_an_analysis_budget_that_is_no_finite_number_is_a_usage_error(versions: tuple[Path, Path],
                                                                      budget: str) -> None:
    old, new = versions
    result = CliRunner().invoke(main, ["diff", str(old), str(new), "--analysis-budget", budget])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert "--analysis-budget" in result.output and "finite" in result.output
    with pytest.raises(dsl.UsageError, match="analysis budget"):
        dsl.diff(old, new, analysis_budget=float(budget))
    _edit(new, CRYPTO, "restrict listing for 30d", "restrict listing for 14d")  # compare asks the solver
    with pytest.raises(ValueError, match="finite"):
        compare(dsl.load(old).policy_set, dsl.load(new).policy_set, budget=float(budget))


def test_a_version_with_test_files_only_is_a_usage_error(tmp_path: Path) -> None:
    """As a directory without policy files is: two empty sets were 'equivalent (proved)'."""
    (tmp_path / "t_test.policy").write_text('test "x"\n  given {price: 6}\n  at 2025-01-01\n  expect block\n',
                                            encoding="utf-8")
    result = CliRunner().invoke(main, ["diff", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert f"OLD '{tmp_path}': no policy files under" in result.output and "only test files" in result.output
    with pytest.raises(dsl.UsageError, match="only test files"):
        dsl.diff(tmp_path, tmp_path)

# ---------------------------------------------------------------- git


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_rev_path_from_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "policies", repo / "policies")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "policies")
    _edit(repo / "policies", CRYPTO, "restrict listing for 30d", "restrict listing for 14d")
    monkeypatch.chdir(repo)
    runner = CliRunner()
    same = runner.invoke(main, ["diff", "HEAD:policies/", "HEAD:policies"])
    assert same.exit_code == 0, same.output
    changed = runner.invoke(main, ["diff", "HEAD:policies/", "policies/", "--format", "json"])
    assert changed.exit_code == 1, changed.output
    assert [c["kind"] for c in json.loads(changed.output)["changes"]] == ["penalty-lighter"]
    one_file = runner.invoke(main, ["diff", f"HEAD:policies/{CRYPTO.as_posix()}", str(Path("policies") / CRYPTO)])
    assert one_file.exit_code == 1 and "penalty lighter" in one_file.output
    bad = runner.invoke(main, ["diff", "no-such-rev:policies/", "policies/"])
    assert bad.exit_code == 2 and "git:" in bad.output and "no-such-rev" in bad.output


def test_rev_path_with_a_link_out_of_the_folder_is_a_usage_error(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "p").mkdir(parents=True)
    (repo / "p" / "a.policy").write_text("policy a\nrule r: block category 'X'\n", encoding="utf-8")
    (repo / "p" / "out.policy").symlink_to("/etc/hostname")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "policies")
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["diff", "HEAD:p/", "p/a.policy"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert "out.policy" in result.output and "HEAD:p/" in result.output


def test_rev_path_is_read_with_that_revisions_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "p" / "drafts").mkdir(parents=True)
    (repo / "policy.toml").write_text('exclude = ["p/drafts"]\n', encoding="utf-8")
    (repo / "p" / "a.policy").write_text("policy a\nrule r: block category 'X'\n", encoding="utf-8")
    (repo / "p" / "drafts" / "d.policy").write_text("policy d\nrule r: block category 'Y'\n", encoding="utf-8")
    (repo / "q").mkdir()
    (repo / "q" / "b.policy").write_text("policy b\nrule r: block category\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "policies")
    monkeypatch.chdir(repo / "p")
    runner = CliRunner()
    # the draft that policy.toml leaves out of p/ is left out of HEAD:p/ too
    for old in ("HEAD:p/", "HEAD:./", "HEAD:p"):
        same = runner.invoke(main, ["diff", old, "."])
        assert same.exit_code == 0 and "equivalent" in same.output, (old, same.output)
    # a revision's errors are located in it, not in a temporary copy
    broken = runner.invoke(main, ["diff", "HEAD:q/", "."])
    assert broken.exit_code == 2 and "HEAD:q/b.policy:2" in broken.output and "policy-diff-" not in broken.output
    # below the top, `HEAD:` is still the whole tree (git archive alone would keep p/ only)
    whole = runner.invoke(main, ["diff", "HEAD:", ".."])
    assert whole.exit_code == 2 and "HEAD:q/b.policy:2" in whole.output, whole.output



def test_rev_path_reads_files_that_git_archive_leaves_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file marked ``export-ignore`` (in the folder's .gitattributes or in
    .git/info/attributes) is read as ``git show`` reads it: ``git archive`` left it out, so
    a change in it was 'equivalent (proved)'."""
    repo = tmp_path / "repo"
    (repo / "p" / "team").mkdir(parents=True)
    (repo / "p" / ".gitattributes").write_text("b.policy export-ignore\n", encoding="utf-8")
    (repo / "p" / "a.policy").write_text("policy a\nrule r: block category 'X'\n", encoding="utf-8")
    (repo / "p" / "b.policy").write_text("policy b\nrule r: block price > 100\n", encoding="utf-8")
    (repo / "p" / "team" / "t.policy").write_text("policy t\nrule r: block price > 100\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("team export-ignore\n", encoding="utf-8")
    for changed in ("b.policy", "team/t.policy"):
        _edit(repo / "p", Path(changed), "price > 100", "price > 1000000")
        _git(repo, "commit", "-q", "-am", changed)
    monkeypatch.chdir(repo)
    runner = CliRunner()
    for old in ("HEAD~2:p", "HEAD~1:p"):
        result = runner.invoke(main, ["diff", old, "HEAD:p/", "--format", "json"])
        assert result.exit_code == 1, (old, result.output)
        assert "block→allow" in [c["kind"] for c in json.loads(result.output)["changes"]], (old, result.output)
    # the same from below the top, and as the folder on disk reads it
    monkeypatch.chdir(repo / "p")
    assert runner.invoke(main, ["diff", "HEAD:./", "."]).exit_code == 0
    assert runner.invoke(main, ["diff", "HEAD~2:./", "."]).exit_code == 1


def test_rev_path_is_split_at_the_first_colon_outside_braces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As git splits it: a colon inside ``^{/…}`` or ``@{…}`` is the revision's (it was
    split there: git was asked for ``HEAD^{/fix``, a usage error)."""
    repo = tmp_path / "repo"
    (repo / "p").mkdir(parents=True)
    (repo / "p" / "a.policy").write_text("policy a\nrule r: block price > 100\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "fix: note")
    _edit(repo / "p", Path("a.policy"), "price > 100", "price > 1000000")
    _git(repo, "commit", "-q", "-am", "later")
    monkeypatch.chdir(repo)
    runner = CliRunner()
    changed = runner.invoke(main, ["diff", "HEAD^{/fix: note}:p", "HEAD:p"])
    assert changed.exit_code == 1 and "HEAD^{/fix: note}:p -> HEAD:p" in changed.output, changed.output
    same = runner.invoke(main, ["diff", "HEAD@{2999-01-01 10:00:00}:p/", "HEAD@{2999-01-01 10:00:00}:p"])
    assert same.exit_code == 0 and "equivalent" in same.output, same.output
    file = runner.invoke(main, ["diff", "HEAD^{/fix: note}:p/a.policy", "p/a.policy"])
    assert file.exit_code == 1, file.output
    unknown = runner.invoke(main, ["diff", "HEAD^{/no such: commit}:p", "HEAD:p"])
    assert unknown.exit_code == 2 and "HEAD^{/no such: commit}" in unknown.output, unknown.output

# ---------------------------------------------------------------- catalogue


def test_catalogue_counts(versions: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = versions
    _edit(new, CRYPTO, "then remove listing and deduct 6 points", "then remove listing and deduct 3 points")
    catalogue = ROOT / "policies" / "samples" / "listings.jsonl"
    d = dsl.diff(old, new, catalogue=[str(catalogue)])
    counts = d.catalogue.to_dict()
    assert counts["records"] == sum(1 for line in catalogue.read_text(encoding="utf-8").splitlines() if line.strip())
    assert counts["changed"] >= 1 and set(counts["by_kind"]) == {"penalty-lighter"}
    assert "xy-2002" in counts["by_kind"]["penalty-lighter"]["examples"]
    assert counts["by_rule"]["alibaba-crypto-2021.penalised"]["count"] == counts["changed"]
    text = render(d, "text")
    assert "catalogue:" in text and "penalty lighter" in text
    csv = tmp_path / "c.csv"
    csv.write_text("id,platform,category,title\nA-1,taobao,Blockchain Miners,rig\nA-2,taobao,Toys,ball\n",
                   encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["diff", str(old), str(new), "--catalogue", str(csv), "--at", "2021-10-20",
                                  "--format", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["catalogue"]["records"] == 2
    assert json.loads(result.output)["catalogue"]["changed"] == 0  # prior 0: step 1 did not change
    assert json.loads(result.output)["catalogue"]["notes"] == []
    # a directory, named as a Hive partition: read as `policy scan` reads it, with its warning
    (tmp_path / "lake" / "platform=taobao").mkdir(parents=True)
    (tmp_path / "lake" / "platform=taobao" / "c.csv").write_text(csv.read_text(encoding="utf-8"), encoding="utf-8")
    for fmt in ("json", "text", "markdown"):
        lake = runner.invoke(main, ["diff", str(old), str(new), "--catalogue", str(tmp_path / "lake"), "--at",
                                    "2021-10-20", "--format", fmt])
        assert lake.exit_code == 1, lake.output
        assert "its directory 'platform=taobao' is named as a Hive partition" in lake.output
    bad = runner.invoke(main, ["diff", str(old), str(new), "--catalogue", str(tmp_path / "none.csv")])
    assert bad.exit_code == 2
    # --at and --id-field are read as `policy scan` reads them
    bad_at = runner.invoke(main, ["diff", str(old), str(new), "--catalogue", str(csv), "--at", "soon"])
    assert bad_at.exit_code == 2 and "--at:" in bad_at.output
    bad_id = runner.invoke(main, ["diff", str(old), str(new), "--catalogue", str(csv), "--id-field", "a..b"])
    assert bad_id.exit_code == 2 and "--id-field 'a..b': not a field path" in bad_id.output


def test_catalogue_records_are_read_and_counted_as_the_scan_reads_them(tmp_path: Path) -> None:
    """A bad CSV row is a record in error, counted, and the rest are compared (DuckDB
    stopped on such a file: exit 2, nothing counted); ids are written as the scan writes
    them (another value than text as its JSON); a record is an envelope in JSON lines only,
    as the scan opens them (a Parquet column ``listing`` is a field)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _model(tmp_path / "a", "policy p\nrule w: block mentions 'bitcoin' penalty warn seller\n")
    b = _model(tmp_path / "b", "policy p\nrule w: block mentions 'bitcoin' penalty remove listing\n")
    replay = Replay(a, b)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,title,price\n1,bitcoin\n2,a,b,c\n3,bitcoin,7\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,title,price\n1,bit\xffcoin,2000\n2,bitcoin,5\n")
    late = tmp_path / "late.csv"  # past what DuckDB samples
    late.write_text("id,title,price\n" + "".join(f"{i},bitcoin,{i}\n" for i in range(3000)) + "x,y\n",
                    encoding="utf-8")
    for path, records, errors, changed in ((ragged, 3, 2, 1), (latin, 2, 1, 1), (late, 3001, 1, 3000)):
        counts = count_catalogue(replay, [str(path)], ["p.w"], at="2021-10-10")
        assert (counts.records, counts.errors, counts.changed) == (records, errors, changed), path.name
    assert count_catalogue(replay, [str(ragged)], ["p.w"], at="2021-10-10").by_kind["penalty-heavier"].examples == ["3"]
    ids = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"title": ["bitcoin", "bitcoin"], "sid": [{"a": "S1", "b": True}, {"a": "S2", "b": None}],
                             "listing": [{"title": "x"}, None]}), ids)
    counts = count_catalogue(replay, [str(ids)], ["p.w"], at="2021-10-10", id_field=("sid",))
    assert counts.changed == 2 and counts.by_kind["penalty-heavier"].examples == ['{"a":"S1","b":true}', '{"a":"S2"}']
    envelope = tmp_path / "e.jsonl"
    envelope.write_text('{"listing": {"id": "E", "title": "bitcoin"}, "at": "2021-10-10"}\n', encoding="utf-8")
    counts = count_catalogue(replay, [str(envelope)], ["p.w"], at="2021-10-10")
    assert counts.changed == 1 and counts.by_kind["penalty-heavier"].examples == ["E"]


# ---------------------------------------------------------------- generated pairs

SETTINGS = settings(deadline=None, max_examples=40,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def _checked(f: A.File) -> PolicySet | None:
    text = format_file(f)
    parsed, diags = parse(text, f.path)
    if diags:
        return None
    ps, found = build([parsed], {f.path: text})
    return ps if not any(d.severity == "error" for d in found) else None


def _renamed(rules: list[A.Rule], i: int, name: str) -> list[A.Rule]:
    """Rule ``i`` named ``name``, and every ``overrides`` naming it."""
    old = rules[i].name
    assert old is not None
    out = [attrs.evolve(r, overrides=tuple(A.Ref(name) if o.name == old.name else o for o in r.overrides))
           for r in rules]
    out[i] = attrs.evolve(out[i], name=A.Ref(name))
    return out


def _mutated(draw: st.DrawFn, f: A.File) -> A.File:
    """A second version of ``f``: the same rules in another order, one rule dropped,
    renamed or copied under another name, one rule's effect changed, or one rule's window
    moved by a day (the first three often change nothing, which the solver must prove)."""
    rules = [s for s in f.statements if isinstance(s, A.Rule)]
    others = [s for s in f.statements if not isinstance(s, A.Rule)]
    named = {o.name for r in rules for o in r.overrides}
    how = draw(st.sampled_from(["reorder", "drop", "rename", "copy", "effect", "window"]))
    i = draw(st.integers(0, len(rules) - 1))
    r = rules[i]
    fresh = "zz-copy" if r.name is None else r.name.name + "-2"
    if how == "drop" and (r.name is None or r.name.name not in named) and len(rules) > 1:
        del rules[i]
    elif how == "rename" and r.name is not None:
        rules = _renamed(rules, i, fresh)
    elif how == "copy" and r.name is not None:
        rules.append(attrs.evolve(r, name=A.Ref(fresh)))
    elif how == "effect" and r.effect in ("block", "flag"):
        rules[i] = attrs.evolve(r, effect="flag" if r.effect == "block" else "block", penalty=None)
    elif how == "window" and r.from_ is not None and isinstance(r.from_, A.Date):
        rules[i] = attrs.evolve(r, from_=attrs.evolve(r.from_, value=r.from_.value + dt.timedelta(days=1)))
    else:
        rules.reverse()
    return attrs.evolve(f, statements=(*others, *rules))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[A.File, A.File]:
    f = draw(policy_files(schema=False, max_rules=3, max_depth=1))
    return f, _mutated(draw, f)


def _instants(*sets: PolicySet) -> list[str]:
    out = {"2020-06-01T00:00:00Z", "2021-10-08T00:00:00Z", "2030-01-01T00:00:00Z"}
    for ps in sets:
        for r in ps.rules:
            for bound in (r.start, r.end):
                if bound is not None:
                    for delta in (dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(hours=12)):
                        out.add((bound + delta).isoformat())
    return sorted(out)


def _kind(a: PolicySet, b: PolicySet, listing: Any, at: str, prior: int) -> str | None | bool:
    try:
        return classify(a, decide_reference(a, listing, at, prior), b, decide_reference(b, listing, at, prior))
    except InputError:
        return False


@SETTINGS
@given(pairs(), st.lists(listings(), min_size=12, max_size=12))
def test_diff_on_generated_pairs(pair: tuple[A.File, A.File], inputs: list[dict[str, Any]]) -> None:
    a, b = _checked(pair[0]), _checked(pair[1])
    if a is None or b is None:
        return
    d = compare(a, b, budget=None)
    for ex in [c.example for c in d.changes] + [r.example for r in d.rules if r.example is not None]:
        assert _kind(a, b, ex.listing, ex.at, ex.prior_violations) == ex.kind
    if d.equivalent:
        for listing in inputs:
            for at in _instants(a, b):
                for prior in (0, 1, 3):
                    assert _kind(a, b, listing, at, prior) in (None, False), (listing, at, prior)
    elif not d.undecided:
        assert d.changes


def test_dsl_diff_stays_the_function_whatever_is_imported() -> None:
    import dsl.versions.run  # noqa: F401  (a submodule import must not shadow the function)
    assert callable(dsl.diff) and dsl.diff.__module__ == "dsl.api"


def test_markdown_p399_shows_a_witness_as_typed() -> None:
    """A P399 message quotes a witness (a dict with ``_`` and ``*`` in it): in Markdown
    its markup characters are escaped, not read as emphasis or links."""
    from dsl.versions.report import plain

    text = plain("replayed: {'seller_id': '*x*', 'a|b': '[1](u) <b>'} `q` #1")
    assert text == "replayed: {'seller\\_id': '\\*x\\*', 'a\\|b': '\\[1\\](u) \\<b\\>'} \\`q\\` \\#1"
