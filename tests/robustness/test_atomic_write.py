"""A failed or killed write never loses a policy file (issue 10, item 1): the file holds
its old content or its new content, whole; `policy fmt` reports a file it cannot write
and goes on with the others."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl.api
import dsl.atomic
from dsl.atomic import write_atomically
from dsl.cli import main

UNFORMATTED = "policy p\nrule r:   block  category 'Blockchain Miners'\n"
FORMATTED = "policy p\n\nrule r: block category 'Blockchain Miners'\n"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_replaces_the_content_and_keeps_the_mode(tmp_path: Path) -> None:
    p = tmp_path / "a.policy"
    p.write_text("old")
    p.chmod(0o640)
    write_atomically(p, "new ✓")
    assert p.read_text(encoding="utf-8") == "new ✓"
    assert p.stat().st_mode & 0o777 == 0o640
    assert _leftovers(tmp_path) == []


def test_a_link_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real.policy"
    target.write_text("old")
    link = tmp_path / "link.policy"
    link.symlink_to(target.name)
    write_atomically(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_a_new_file_gets_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "n.policy", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "n.policy").stat().st_mode & 0o777 == 0o644


def test_a_read_only_file_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.policy"
    p.write_text("old")
    p.chmod(0o444)
    # root may write anything: pretend to be the user the mode speaks to
    monkeypatch.setattr(dsl.atomic.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError):
        write_atomically(p, "new")
    assert p.read_text() == "old" and _leftovers(tmp_path) == []


class _Failing:
    """A file object that writes ``budget`` bytes, then fails as a full disk does."""

    def __init__(self, real: Any, budget: int):
        self.real, self.budget = real, budget

    def write(self, data: bytes) -> int:
        self.real.write(data[:self.budget])
        self.real.flush()
        if len(data) > self.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> _Failing:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.real.close()


def _fail_at(monkeypatch: pytest.MonkeyPatch, stage: str, budget: int = 0) -> None:
    if stage == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(dsl.atomic.os, "fdopen", lambda fd, *a, **k: _Failing(real_fdopen(fd, *a, **k), budget))
        return

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(dsl.atomic.os, {"fsync": "fsync", "chmod": "chmod", "replace": "replace"}[stage], fail)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.text(max_size=300), new=st.text(max_size=300),
       stage=st.sampled_from(["write", "fsync", "chmod", "replace"]), budget=st.integers(0, 1200))
def test_a_failed_write_leaves_the_old_content_whole(tmp_path: Path, old: str, new: str, stage: str,
                                                     budget: int) -> None:
    p = tmp_path / "f.policy"
    p.write_bytes(old.encode("utf-8", "surrogatepass"))
    new = new.encode("utf-8", "replace").decode("utf-8")
    with pytest.MonkeyPatch.context() as mp:
        _fail_at(mp, stage, budget)
        try:
            write_atomically(p, new)
        except OSError:
            assert p.read_bytes() == old.encode("utf-8", "surrogatepass")
        else:  # the budget covered the whole text
            assert stage == "write" and p.read_bytes() == new.encode("utf-8")
    assert _leftovers(tmp_path) == []


def _unformatted_tree(tmp_path: Path) -> list[Path]:
    files = [tmp_path / f"{name}.policy" for name in ("a", "b", "c")]
    for f in files:
        f.write_text(UNFORMATTED.replace("policy p", f"policy {f.stem}"))
    return files


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_fmt_reports_a_file_it_cannot_write_and_formats_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   stage: str) -> None:
    a, b, c = _unformatted_tree(tmp_path)
    real = write_atomically

    def flaky(path: Any, text: str) -> None:
        if Path(path).name == "b.policy":
            with pytest.MonkeyPatch.context() as mp:
                _fail_at(mp, stage, budget=10)
                real(path, text)
        else:
            real(path, text)

    monkeypatch.setattr(dsl.api, "write_atomically", flaky)  # where policy fmt calls it
    result = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert result.exit_code == 1
    assert f"cannot write {b}" in result.stderr and "unchanged" in result.stderr
    assert "Traceback" not in result.output
    assert a.read_text() == FORMATTED.replace("policy p", "policy a")
    assert b.read_text() == UNFORMATTED.replace("policy p", "policy b")
    assert c.read_text() == FORMATTED.replace("policy p", "policy c")
    assert _leftovers(tmp_path) == []


def test_fmt_on_a_read_only_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = _unformatted_tree(tmp_path)
    b.chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(dsl.atomic.os, "access",
                        lambda path, mode: False if Path(path).name == "b.policy" else real_access(path, mode))
    result = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert result.exit_code == 1 and f"cannot write {b}: Permission denied" in result.stderr
    assert b.read_text() == UNFORMATTED.replace("policy p", "policy b") and c.read_text() != UNFORMATTED


_WRITER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[2])  # not the whole package: quick to start
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
write_atomically = atomic.write_atomically
path, a, b = sys.argv[1], "A" * 300_000, "B" * 500_000
print("ready", flush=True)
while True:
    write_atomically(path, b)
    write_atomically(path, a)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_kill_9_during_writes_leaves_one_whole_content(tmp_path: Path) -> None:
    """A writer killed at an arbitrary moment: the file is the old or the new text, whole
    (a temporary file may stay behind: its name does not end in .policy)."""
    p = tmp_path / "big.policy"
    p.write_text("A" * 300_000)
    for delay in (0.02, 0.05, 0.11):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(p), dsl.atomic.__file__], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        content = p.read_bytes()
        assert content in (b"A" * 300_000, b"B" * 500_000), len(content)
    assert all(not name.endswith(".policy") for name in os.listdir(tmp_path) if name != "big.policy")


def test_the_scan_output_replaces_a_file_keeping_its_mode(tmp_path: Path) -> None:
    """The scan's writer ends in ``dsl.atomic.replace_with`` as ``policy fmt`` does: the
    old file's mode stays, nothing is left beside it."""
    import pyarrow as pa

    from dsl.scan.output import Writer
    from dsl.scan.schema import arrow_schema
    out = tmp_path / "out.csv"
    out.write_text("old")
    os.chmod(out, 0o640)
    w = Writer(str(out), "csv")
    w.write(pa.RecordBatch.from_pylist([], schema=arrow_schema("csv")))
    w.commit()
    assert out.read_text() != "old" and (out.stat().st_mode & 0o777) == 0o640
    assert _leftovers(tmp_path) == []


_SCAN_KILLED = """
import os, signal, sys
from dsl.scan.output import Writer
w = Writer(sys.argv[1], "jsonl")
w.write('{"id": "1"}\\n' * 1000)
print(w.temp, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_scan_removes_what_a_killed_scan_of_the_same_output_left(tmp_path: Path) -> None:
    """``kill -9`` of a scan leaves its hidden temporary output (nothing can remove it
    then); the next scan of the same output removes it once it is abandoned: held by no
    process and unchanged for ``dsl.atomic.ABANDONED`` seconds."""
    from dsl.scan.output import Writer

    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-c", _SCAN_KILLED, str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    left = Path(done.stdout.strip())
    assert left.exists() and left.parent == tmp_path, done.stderr
    Writer(str(out), "jsonl").abort()  # changed just now: perhaps a writer that has not taken its hold yet
    assert left.exists()
    past = time.time() - dsl.atomic.ABANDONED - 1
    os.utime(left, (past, past))
    other = tmp_path / ".out.jsonl.x.tmp"  # not a name of ours
    other.write_text("keep")
    os.utime(other, (past, past))
    w = Writer(str(out), "jsonl")
    w.write('{"id": "2"}\n')
    w.commit()
    assert not left.exists() and other.exists() and _leftovers(tmp_path) == [other.name]


def test_a_temporary_output_held_by_a_writer_is_never_removed(tmp_path: Path) -> None:
    """Another scan writing the same output holds its temporary file: however long it has
    not changed, a second scan leaves it alone."""
    out = tmp_path / "out.csv"
    held = dsl.atomic.Temporary(out)
    past = time.time() - dsl.atomic.ABANDONED - 1
    os.utime(held.name, (past, past))
    assert dsl.atomic.remove_abandoned(out) == [] and Path(held.name).exists()
    held.release()
    assert dsl.atomic.remove_abandoned(out) == [held.name] and not Path(held.name).exists()


def test_only_regular_files_of_our_names_are_taken_for_abandoned(tmp_path: Path) -> None:
    """A FIFO, a directory or a link named as a temporary output is left alone, and the
    FIFO is not waited on (opened without blocking)."""
    out = tmp_path / "out.csv"
    past = time.time() - dsl.atomic.ABANDONED - 1
    fifo, folder, link = (tmp_path / f".out.csv.{name}.tmp" for name in ("fifo_abc", "folder_a", "link_abc"))
    os.mkfifo(fifo)
    folder.mkdir()
    (tmp_path / "target").write_text("keep")
    link.symlink_to(tmp_path / "target")
    for path in (fifo, folder):
        os.utime(path, (past, past))
    assert dsl.atomic.remove_abandoned(out) == []
    assert fifo.exists() and folder.exists() and link.is_symlink()
