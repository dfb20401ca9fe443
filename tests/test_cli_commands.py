"""`policy fmt`, `policy eval` and `policy test` through the CLI, and `eval`/`test` once
end to end through the installed command on the conformance corpus."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conformance import CORPUS

import dsl
from dsl.cli import main
from dsl.eval_stream import run_eval

POLICY = Path(sys.executable).parent / "policy"
MESSY = "policy  p   # the policy\nrule r :   block    category \"X\"\n"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


def test_fmt_check_diff_and_rewrite(tmp_path: Path) -> None:
    f = tmp_path / "p.policy"
    f.write_text(MESSY)
    code, out, _ = run("fmt", "--check", str(tmp_path))
    assert code == 1 and "would reformat" in out and f.read_text() == MESSY
    code, out, _ = run("fmt", "--diff", str(tmp_path))
    assert code == 1 and out.startswith("---") and "+rule r: block category 'X'" in out
    code, out, _ = run("fmt", str(tmp_path))
    assert code == 0 and "reformatted" in out
    assert f.read_text() == "policy p  # the policy\n\nrule r: block category 'X'\n"
    assert run("fmt", "--check", str(tmp_path))[0] == 0


def test_fmt_leaves_broken_files_alone(tmp_path: Path) -> None:
    f = tmp_path / "p.policy"
    f.write_text("policy p\nrule r: blok category 'X'\n")
    code, _, err = run("fmt", str(tmp_path))
    assert code == 1 and "P100" in err and f.read_text() == "policy p\nrule r: blok category 'X'\n"


def test_fmt_leaves_a_file_saved_while_it_formats_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saved the file after fmt read it: renaming the formatted old text over it
    lost that edit (fmt said "reformatted", exit 0)."""
    from dsl import api

    f = tmp_path / "p.policy"
    f.write_text(MESSY)
    real = api.format_file

    def saved_meanwhile(parsed: object) -> str:
        f.write_text(MESSY + "rule s: flag category 'Y'\n")  # (another size: a new stamp however fast)
        return real(parsed)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "format_file", saved_meanwhile)
    code, out, err = run("fmt", str(tmp_path))
    assert code == 1 and "changed while it was being formatted; it is left as it is" in err and out == ""
    assert f.read_text() == MESSY + "rule s: flag category 'Y'\n"


def test_fmt_with_a_broken_configuration_formats_nothing(tmp_path: Path) -> None:
    """Its exclusions may not apply: the files it leaves out would be rewritten."""
    (tmp_path / "policy.toml").write_text('exclude = ["fixtures/**"\n')  # not TOML: applies nothing
    (tmp_path / "fixtures").mkdir()
    kept = tmp_path / "fixtures" / "messy.policy"
    kept.write_text(MESSY)
    code, _, err = run("fmt", str(tmp_path))
    assert code == 1 and "P600" in err and "no file was formatted" in err and kept.read_text() == MESSY


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch command")
def test_fmt_diff_applies_with_patch(tmp_path: Path) -> None:
    """Lines end at \\n only (a form feed, U+0085 and U+2028 in a comment or a string do not
    end one), and a last line without \\n is marked: the diff gives the formatted file."""
    texts = {"nonl.policy": "policy a\nrule   r: block mentions 'x'",
             "ff.policy": "policy b\n# a\fb \u2028 c\x85d\nrule   r: block mentions 'x\u2028y'\n"
                          "rule s: block   mentions 'q'\n",
             "c.policy": "policy c\n\nrule r: block mentions 'x'\nrule   s: block mentions 'y'"}
    for name, text in texts.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
    code, diff, _ = run("fmt", "--diff", str(tmp_path))
    assert code == 1 and diff.count("\\ No newline at end of file\n") == 2
    proc = subprocess.run(["patch", "-p0", "-s", "-d", "/"], input=diff.encode("utf-8"), capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, text in texts.items():
        assert (tmp_path / name).read_bytes().decode("utf-8") == dsl.format_source(text), name


def test_fmt_leaves_excluded_files_alone(tmp_path: Path) -> None:
    """The configuration's `exclude` leaves files out of fmt as it leaves them out of the
    set: `policy fmt` with no path must not rewrite a project's deliberately messy inputs."""
    (tmp_path / "pyproject.toml").write_text('[tool.policy]\nexclude = ["fixtures/**"]\n')
    (tmp_path / "fixtures").mkdir()
    kept = tmp_path / "fixtures" / "messy.policy"
    kept.write_text(MESSY)
    formatted = tmp_path / "p.policy"
    formatted.write_text(MESSY)
    code, _, _ = run("fmt", str(tmp_path))
    assert code == 0 and kept.read_text() == MESSY and formatted.read_text() != MESSY
    code, _, _ = run("fmt", str(kept))  # a file named on the command line is never left out
    assert code == 0 and kept.read_text() != MESSY


def test_fmt_usage_errors(tmp_path: Path) -> None:
    assert run("fmt", "--check", "--diff", str(tmp_path))[0] == 2
    assert run("fmt", str(tmp_path / "missing"))[0] == 2


def test_eval_records_and_errors(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("policy p\nrule r: block category 'Blockchain Miners'\n")
    lines = '{"category": "Blockchain Miners"}\nnot json\n[1]\n{"listing": {"title": "x"}, "at": "2022-01-01"}\n'
    code, out, _ = run("eval", str(tmp_path), "--input", "-", "--at", "2022-01-01", input=lines)
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 1 and len(rows) == 4
    assert rows[0]["effect"] == "block" and rows[1]["error"]["record"] == 2 and rows[3]["effect"] == "allow"


def test_eval_bad_at_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("policy p\nrule r: block\n")
    code, _, err = run("eval", str(tmp_path), "--input", "-", "--at", "yesterday", input="{}")
    assert code == 2 and "--at" in err


def test_eval_policy_errors(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("policy p\nrule r: blok\n")
    code, _, err = run("eval", str(tmp_path), "--input", "-", input="{}")
    assert code == 1 and "P100" in err


def test_eval_of_a_directory_with_test_files_only_is_a_usage_error(tmp_path: Path) -> None:
    """As a directory without policy files is: its empty set allowed every record, exit 0."""
    (tmp_path / "t_test.policy").write_text('test "x"\n  given {price: 6}\n  at 2025-01-01\n  expect block\n')
    for path in (tmp_path, tmp_path / "t_test.policy"):
        code, out, err = run("eval", str(path), "--input", "-", input='{"price": 6}\n')
        assert code == 2 and out == "" and "no policy files under" in err and "only test files" in err, err
    with pytest.raises(dsl.UsageError, match="only test files"):
        dsl.load(tmp_path)
    # policy check and policy test say P504 for it, as before
    assert run("check", str(tmp_path))[0] == 1 and "P504" in run("check", str(tmp_path))[1]


def test_eval_of_a_set_whose_policy_files_are_all_excluded_is_a_usage_error(tmp_path: Path) -> None:
    """Its empty set allowed every record (exit 0), and diff called two such sets equivalent."""
    (tmp_path / "c.policy").write_text("policy c\nrule r: block price > 5\n")
    (tmp_path / "policy.toml").write_text('exclude = ["*.policy"]\n')
    code, out, err = run("eval", str(tmp_path), "--input", "-", input='{"price": 6}\n')
    assert code == 2 and out == "" and "excludes every one" in err and "policy.toml" in err, err
    with pytest.raises(dsl.UsageError, match="excludes every one"):
        dsl.load(tmp_path)
    code, out, err = run("diff", str(tmp_path), str(tmp_path))
    assert code == 2 and "excludes every one" in err, (out, err)


def test_eval_policy_errors_send_to_policy_check(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("policy p\nrule r: blok\n")
    code, out, err = run("eval", str(tmp_path), "--input", "-", input="{}")
    assert code == 1 and out == ""
    assert err.endswith("policy: the policy set has errors; run `policy check` for details\n")


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("suite", sorted(p.name for p in (CORPUS / "decisions").iterdir()) if CORPUS.exists() else [])
def test_installed_eval_on_conformance_decisions(suite: str) -> None:
    folder = CORPUS / "decisions" / suite
    cases = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines() if line.strip()]
    records = "\n".join(json.dumps({"listing": c["listing"], "at": c["at"],
                                    "prior_violations": c.get("prior_violations", 0)})
                        for c in cases)
    proc = subprocess.run([str(POLICY), "eval", str(folder), "--input", "-"], input=records,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(got) == len(cases)
    for case, decision in zip(cases, got, strict=True):
        for key in ("effect", "rules", "overridden", "penalty"):
            assert decision[key] == case["expect"][key], (case["name"], key)
        if "warnings" in case["expect"]:
            assert len(decision["warnings"]) == case["expect"]["warnings"], case["name"]
        if "at" in case["expect"]:
            assert decision["at"] == case["expect"]["at"], case["name"]


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("suite", sorted(p.name for p in (CORPUS / "tests").iterdir() if p.is_dir())
                         if CORPUS.exists() else [])
def test_installed_policy_test_on_conformance(suite: str) -> None:
    """`policy test SUITE` on each suite folder: every outcome as its `# expect:` comment says."""
    from test_testing_conformance import expectations

    folder = CORPUS / "tests" / suite
    proc = subprocess.run([str(POLICY), "test", str(folder), "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # the corpus holds failures on purpose
    got = {(Path(r["file"]).name, r["line"]): r["outcome"] for r in json.loads(proc.stdout)}
    want = {(f.name, line): outcome for f in sorted(folder.glob("*_test.policy"))
            for line, outcome in expectations(f).items()}
    assert got == want


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill a write")
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_an_output_that_cannot_be_written_is_a_usage_error(tmp_path: Path, unbuffered: str) -> None:
    """Standard output on a full device, or closed: exit status 2 and a message, no
    traceback (``cli.run``); Python's standard output buffered or not (``PYTHONUNBUFFERED``:
    `policy eval` then writes through a buffer of its own, ``cli._buffered_stdout``)."""
    (tmp_path / "in.jsonl").write_text('{"title": "lamp"}\n' * 1000, encoding="utf-8")
    policies = str(Path(__file__).resolve().parents[1] / "policies")
    command = [sys.executable, "-m", "dsl", "eval", policies, "--input", str(tmp_path / "in.jsonl"),
               "--at", "2021-10-20"]
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    with open("/dev/full", "wb") as full:
        filled = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    assert filled.returncode == 2, filled.stderr
    assert "cannot write the output: No space left on device" in filled.stderr and "Traceback" not in filled.stderr
    closed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 2 and "standard output is closed" in closed.stderr, closed.stderr
    with open("/dev/full", "wb") as full:  # the table on standard error: its message is lost, the status is 2
        done = subprocess.run([sys.executable, "-m", "dsl", "scan", policies, "--input", str(tmp_path / "in.jsonl"),
                               "--out", str(tmp_path / "out.jsonl"), "--at", "2021-10-20"], stdout=subprocess.PIPE,
                              stderr=full)
    assert done.returncode == 2


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_eval_writes_the_same_lines_whether_python_buffers_its_output_or_not(tmp_path: Path, unbuffered: str) -> None:
    """Under ``PYTHONUNBUFFERED`` (``python -u``) `policy eval` writes through a buffer of
    its own on the same descriptor (``cli._buffered_stdout``: not a system call a line), flushed
    as it waits for input: the lines are those of the Python API, and a reader of a pipe
    gets each decision before the next record is sent."""
    records = [{"listing": {"title": "bitcoin miner"}, "at": "2021-10-20"}, {"title": "lamp"}, "not a listing"]
    policies = str(Path(__file__).resolve().parents[1] / "policies")
    expected = list(run_eval(dsl.load([policies]), io.BytesIO(b"\n".join(json.dumps(r).encode() for r in records)),
                             at="2021-10-20"))
    proc = subprocess.Popen([sys.executable, "-m", "dsl", "eval", policies, "--input", "-", "--at", "2021-10-20"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": unbuffered})
    assert proc.stdin is not None and proc.stdout is not None
    stop = threading.Timer(60, proc.kill)  # a decision never flushed fails the test, not hangs it
    stop.start()
    got = []
    try:
        for record in records:  # one record at a time: its decision comes back before the next is sent
            proc.stdin.write(json.dumps(record).encode() + b"\n")
            proc.stdin.flush()
            if record is not records[0]:  # (whether the input is one JSON value is known at its second line)
                got.append(proc.stdout.readline().decode().rstrip("\n"))
        proc.stdin.close()
        got += [line.decode().rstrip("\n") for line in proc.stdout]
    finally:
        stop.cancel()
    assert proc.wait(timeout=60) == 1 and got == expected


def test_an_input_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    """Standard input opened for writing only: `--input -` fails as it is read, exit 2,
    told as the input's failure, not the output's."""
    policies = str(Path(__file__).resolve().parents[1] / "policies")
    with open(tmp_path / "w.txt", "wb") as write_only:
        done = subprocess.run([sys.executable, "-m", "dsl", "eval", policies, "--input", "-"], stdin=write_only,
                              capture_output=True, text=True)
    assert done.returncode == 2 and "--input: cannot be read: Bad file descriptor" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    closed = subprocess.run([sys.executable, "-m", "dsl", "eval", policies, "--input", "-"], capture_output=True,
                            text=True, preexec_fn=lambda: os.close(0))  # (``<&-``)
    assert closed.returncode == 2 and "standard input is closed" in closed.stderr, closed.stderr
    assert "Traceback" not in closed.stderr


def test_an_interrupted_duckdb_query_is_told_as_an_interrupt(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """DuckDB takes ^C itself and raises a RuntimeError: ``cli.run`` tells it as click tells
    an interrupt (exit 1, "Aborted!"), not as a traceback; another RuntimeError is a bug."""
    from dsl import cli

    def interrupted() -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(cli.gc, "freeze", lambda: None)  # (``run`` freezes the heap: this process goes on)
    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)  # (and sets the handlers of ^C and SIGTERM)
    monkeypatch.setattr(cli, "main", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli.run()
    assert stopped.value.code == 1 and capsys.readouterr().err == "Aborted!\n"

    def broken() -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(cli, "main", broken)
    with pytest.raises(RuntimeError):
        cli.run()


TERMINATED_SCAN = """
import os, signal, sys
from dsl import cli
from dsl.scan import run
decide = run.decide_batch
calls = []
def decide_then_terminated(*args):
    calls.append(1)
    if len(calls) == 3:  # as a job scheduler's ``kill`` in the middle of the scan
        os.kill(os.getpid(), signal.SIGTERM)
    return decide(*args)
run.decide_batch = decide_then_terminated
run.scan.__kwdefaults__["batch_size"] = 100  # several batches
sys.argv = ["policy", "scan", "tests/scan_policies", "--input", sys.argv[1], "--out", sys.argv[2], "--at",
            "2021-10-20", "--jobs", "1"]
cli.run()
"""


def test_a_terminated_scan_cleans_up_as_an_interrupted_one(tmp_path: Path) -> None:
    """SIGTERM ends the command as an exception does: no temporary output is left, no
    traceback, and the status a shell gives a process SIGTERM ended (143)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pa.table({"id": [str(i) for i in range(1000)], "category": ["Toys"] * 1000})
    pq.write_table(rows, tmp_path / "in.parquet")
    done = subprocess.run([sys.executable, "-c", TERMINATED_SCAN, str(tmp_path / "in.parquet"),
                           str(tmp_path / "out.parquet")], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 143 and "Traceback" not in done.stderr, done.stderr
    assert os.listdir(tmp_path) == ["in.parquet"]


TERMINATED_TWICE = """
import concurrent.futures, os, signal, sys, threading
from dsl import cli
from dsl.scan import pool, run
MAIN = os.getpid()
pool.worth_starting = lambda spent, measured, remaining: True  # workers at once
decide = run.decide_batch
calls = []
def decide_then_terminated(*args):
    calls.append(1)
    if len(calls) == 3:  # a job scheduler's ``kill`` in the middle of the scan (from a worker too)
        os.kill(MAIN, signal.SIGTERM)
    return decide(*args)
run.decide_batch = decide_then_terminated
shutdown = concurrent.futures.ProcessPoolExecutor.shutdown
def terminated_again(self, *args, **kwargs):
    if os.getpid() == MAIN:  # ... and again while the scan stops its workers, from another thread
        threading.Thread(target=os.kill, args=(MAIN, signal.SIGTERM)).start()
    return shutdown(self, *args, **kwargs)
concurrent.futures.ProcessPoolExecutor.shutdown = terminated_again
run.scan.__kwdefaults__["batch_size"] = 20
sys.argv = ["policy", "scan", "tests/scan_policies", "--input", sys.argv[1], "--out", sys.argv[2], "--at",
            "2021-10-20", "--jobs", "2"]
cli.run()
"""


def test_a_scan_terminated_twice_still_stops_its_workers(tmp_path: Path) -> None:
    """A second SIGTERM while the scan stops its workers waits for them to end: it hung the
    scan (the pool's shutdown interrupted halfway)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pa.table({"id": [str(i) for i in range(2000)], "category": ["Toys"] * 2000})
    pq.write_table(rows, tmp_path / "in.parquet", row_group_size=100)
    spool = tmp_path / "tmp"
    spool.mkdir()
    done = subprocess.run([sys.executable, "-c", TERMINATED_TWICE, str(tmp_path / "in.parquet"),
                           str(tmp_path / "out.parquet")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, "TMPDIR": str(spool)})
    assert done.returncode == 143 and "Traceback" not in done.stderr, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "tmp"] and not os.listdir(spool)


INTERRUPTED_IMPORT = """
import sys

class Interrupt:  # a ^C while Python imports the API, as the user presses it
    def find_spec(self, name, path=None, target=None):
        if name == "dsl.api":
            raise KeyboardInterrupt
        return None

import dsl
assert "dsl.api" not in sys.modules  # `import dsl` imports nothing else: the entry point runs first
sys.meta_path.insert(0, Interrupt())
sys.argv = ["policy", "check", "policies"]
from dsl.entry import run
run()
"""


def test_a_ctrl_c_while_the_command_starts_ends_it_without_a_traceback() -> None:
    """The console script's entry point imports the command line itself (``dsl.entry``):
    a ^C meanwhile is told as click tells one later, "Aborted!" and exit status 1."""
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert (done.returncode, done.stderr) == (1, "Aborted!\n")
