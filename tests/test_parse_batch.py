"""``dsl.syntax.batch``: a set parsed by two processes gives exactly what a serial parse
gives: the same ASTs with the same spans, the same diagnostics, in the same order, for
the same files; a file the second process did not deliver is parsed here."""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from dsl import forking
from dsl.checking import loader
from dsl.syntax import batch
from dsl.syntax.batch import parse_all

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child is forked on Linux only")

_can_fork = forking.can_fork  # what the parse asks (its native threads counted)


@pytest.fixture(autouse=True)
def _fork_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests fork whatever threads the test run has started (the child only parses)."""
    monkeypatch.setattr(batch, "can_fork", lambda: True)

TEXTS = [
    ("a.policy", "policy a\n  timezone 'Asia/Shanghai'\n\nset s = ['x', 'y\\u{e9}']\n"
                 "rule r1: from 2021-10-08 block category 'A > B' and price >= 19.99  # a comment\n"
                 "rule r2: block mentions any s penalty remove listing then close account\n", False),
    ("b.policy", "policy b\nrule bad: block category\nrule ok: flag exists seller.id because 'why'\n"
                 "rule late: from 2021-13-40 block category 'C'\n", False),
    ("c_test.policy", "test 'one' given {category: 'A > B', price: 20} at 2021-10-20 expect block by a.r1\n"
                      "rule misplaced: block category 'D'\n", True),
    ("d.policy", "\ufeffpolicy d\n" + "".join(f"rule r{i}: from 2022-01-{1 + i % 28:02d} block category 'K {i}'\n"
                                              for i in range(300)), False),
    ("e.policy", "policy e\nrule é: block category 'x'\nrule q: allow category 'y' overrides a.r1\n\n", None),
    ("f.policy", "", False),
]


def _plain(results: list[Any]) -> list[Any]:
    """Everything a result holds, spans and diagnostics' extras included."""
    return [(attrs.asdict(file), [attrs.asdict(d) for d in diags]) for file, diags in results]


def _slow_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """This process parses slowly, so that the child takes its share; the list fills with
    the number of results the child delivered."""
    parent = os.getpid()
    real_parse, real_read = batch.parse, batch._Records.read
    delivered = [0]

    def slow(text: str, path: str = "<string>", *, test_file: bool | None = None) -> Any:
        if os.getpid() == parent:
            time.sleep(0.2)
        return real_parse(text, path, test_file=test_file)

    def read(self: batch._Records) -> None:
        before = sum(r is not None for r in self.results)
        real_read(self)
        delivered[0] += sum(r is not None for r in self.results) - before

    monkeypatch.setattr(batch, "parse", slow)
    monkeypatch.setattr(batch._Records, "read", read)
    return delivered


def test_two_processes_give_what_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    serial = parse_all(TEXTS, processes=1)
    assert any(diags for _, diags in serial)  # errors and their recovery are compared too
    delivered = _slow_here(monkeypatch)
    parallel = parse_all(TEXTS, processes=2)
    assert delivered[0] >= 2
    assert _plain(parallel) == _plain(serial)
    assert [f for f, _ in parallel] == [f for f, _ in serial]


def test_both_processes_pickle_what_they_parse_for_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    serial = parse_all(TEXTS, processes=1)
    delivered = _slow_here(monkeypatch)
    pickled: list[bytes | None] = [None] * len(TEXTS)
    parse_all(TEXTS, processes=2, pickled=pickled)
    assert delivered[0] >= 2 and delivered[0] < len(TEXTS)  # some parsed here, some there
    assert all(data is not None for data in pickled)  # this process's own too, as it went
    assert _plain([pickle.loads(data) for data in pickled if data is not None]) == _plain(serial)


def test_a_file_the_child_does_not_deliver_is_parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    serial = parse_all(TEXTS, processes=1)
    parent = os.getpid()
    delivered = _slow_here(monkeypatch)
    real = batch.parse

    def dying(text: str, path: str = "<string>", *, test_file: bool | None = None) -> Any:
        if os.getpid() != parent and path == "d.policy":
            os._exit(3)  # the child ends mid-set, with a file claimed
        return real(text, path, test_file=test_file)

    monkeypatch.setattr(batch, "parse", dying)
    assert _plain(parse_all(TEXTS, processes=2)) == _plain(serial)
    assert delivered[0] >= 1  # the files after d.policy (from the back): e, f


def test_load_paths_is_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text, _ in TEXTS:
        (tmp_path / name).write_text(text, encoding="utf-8")
    serial = loader.load_paths([tmp_path])
    monkeypatch.setattr(batch, "MIN_CHARS", 0)
    monkeypatch.setattr(batch, "_cpus", lambda: 2)
    parallel = loader.load_paths([tmp_path])
    assert parallel.sources == serial.sources
    assert [attrs.asdict(f) for f in parallel.policy_files] == [attrs.asdict(f) for f in serial.policy_files]
    assert [attrs.asdict(f) for f in parallel.test_files] == [attrs.asdict(f) for f in serial.test_files]
    assert [attrs.asdict(d) for d in parallel.diagnostics] == [attrs.asdict(d) for d in serial.diagnostics]


def test_small_sets_and_threads_stay_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not batch._worth_forking(TEXTS)  # a few small files: not worth a fork
    assert forking.os_threads() >= 1
    monkeypatch.setattr(forking, "os_threads", lambda: 1)
    monkeypatch.setattr(forking.threading, "active_count", lambda: 1)
    assert _can_fork()
    monkeypatch.setattr(forking.threading, "active_count", lambda: 2)
    assert not _can_fork()  # a fork would copy the locks other threads hold
    assert not forking.can_fork(native_threads=True)
    monkeypatch.setattr(forking.threading, "active_count", lambda: 1)
    monkeypatch.setattr(forking, "os_threads", lambda: 3)  # a native library's threads
    assert not _can_fork()
    assert forking.can_fork(native_threads=True)  # (the scan's workers: its own query closed first)


def test_a_process_that_cannot_have_a_child_parses_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemonic process (a pool's worker) may not start one: the set is parsed here."""
    import multiprocessing.process

    def refuse(self: Any) -> None:
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    assert _plain(parse_all(TEXTS, processes=2)) == _plain(parse_all(TEXTS, processes=1))


def test_without_a_temporary_file_the_set_is_parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert _plain(parse_all(TEXTS, processes=2)) == _plain(parse_all(TEXTS, processes=1))


DEEP = ("z_test.policy",  # a listing nested 250 levels: it parses, but its pickle is too deep
        "test 'deep' given " + "{k: " * 250 + "1" + "}" * 250 + " at 2021-10-20 expect allow\n", True)


def test_a_file_the_child_cannot_pickle_is_parsed_here_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    jobs = [*TEXTS, DEEP]  # the child's first file, from the back
    serial = parse_all(jobs, processes=1)
    parallel = parse_all(jobs, processes=2)
    assert capfd.readouterr().err == ""  # no traceback of the child's
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # to compare (not before: the child's pickle is to fail)
    try:
        assert _plain(parallel) == _plain(serial)
    finally:
        sys.setrecursionlimit(limit)


def _run(script: str) -> None:
    """``script`` run by a Python of its own (the scenarios below hung before: a timeout
    guards the suite, no time is asserted)."""
    import subprocess

    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "same", ran.stdout + ran.stderr


_SETUP = """
import os, signal, sys, time
sys.path.insert(0, 'tests')
from test_parse_batch import TEXTS, _plain
from dsl.syntax import batch
batch.can_fork = lambda: True
batch._PATIENCE = 0.05
serial = batch.parse_all(TEXTS, processes=1)
parent = os.getpid()
"""


def test_a_process_that_ignores_sigchld_parses_alone() -> None:
    """The kernel then reaps children as they end: the wait for the child never learnt
    that it had (``dsl.load`` of a large set hung in a service that ignores SIGCHLD)."""
    _run("""
import signal, sys
sys.path.insert(0, 'tests')
from test_parse_batch import TEXTS, _plain
from dsl.syntax import batch
serial = batch.parse_all(TEXTS, processes=1)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print('same' if _plain(batch.parse_all(TEXTS, processes=2)) == _plain(serial) else 'differs')
""")


def test_a_child_killed_holding_the_claim_lock_does_not_hang_this_process() -> None:
    _run(_SETUP + """
def dies_holding_it(jobs, lock, ends, out):
    lock.acquire()
    os._exit(9)
batch._child = dies_holding_it
print('same' if _plain(batch.parse_all(TEXTS, processes=2)) == _plain(serial) else 'differs')
""")


def test_an_interrupt_here_kills_the_child_whatever_its_sigterm_handler() -> None:
    """The child inherits this process's handlers: SIGTERM ignored (or handled by an
    embedding service) must not keep it, and this process waiting on it, running."""
    _run(_SETUP + """
signal.signal(signal.SIGTERM, signal.SIG_IGN)
real = batch.parse
def parse(text, path='<string>', *, test_file=None):
    while os.getpid() != parent and os.getppid() == parent:
        time.sleep(0.05)  # the child is slow: it waits for this process to end
    raise KeyboardInterrupt
batch.parse = parse
try:
    batch.parse_all(TEXTS, processes=2)
except KeyboardInterrupt:
    import multiprocessing
    print('same' if not multiprocessing.active_children() else 'a child left')
""")


def test_a_lock_held_by_a_dead_process_is_given_up() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    lock = ctx.Lock()
    holder = ctx.Process(target=lock.acquire)
    holder.start()
    holder.join()
    assert not batch._acquire(lock, holder.is_alive)
    free = ctx.Lock()
    assert batch._acquire(free, holder.is_alive)


def test_an_interrupt_as_the_child_is_born_is_not_its_traceback() -> None:
    """A ^C reaches the whole process group: one that comes while the child starts finds
    SIGINT blocked there (then ignored), so the child prints no traceback and still
    parses its share. Here the child interrupts itself first thing, deterministically."""
    import subprocess

    script = _SETUP + """
real = batch._child
def interrupted(*args):
    os.kill(os.getpid(), signal.SIGINT)  # as a ^C during the fork would
    real(*args)
batch._child = interrupted
print('same' if _plain(batch.parse_all(TEXTS, processes=2)) == _plain(serial) else 'different')
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert ran.returncode == 0 and ran.stdout.strip() == "same", ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr and "KeyboardInterrupt" not in ran.stderr, ran.stderr


def test_a_signal_in_this_process_during_the_fork_stops_the_child_too() -> None:
    """A ^C (or another signal whose handler raises: a timeout's SIGALRM) that comes during
    the fork is held until the child is known, then raised here, and the child is killed
    and reaped: it went on parsing the whole set, then stayed a zombie, and with the
    handler raising as the fork returned SIGINT stayed blocked for good."""
    _run(_SETUP + """
class Timeout(Exception):
    pass
def alarm(signum, frame):
    raise Timeout()
signal.signal(signal.SIGUSR1, alarm)
real = os.fork
for sig, kind in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGUSR1, Timeout)):
    def fork(sig=sig):
        if os.getpid() == parent:
            os.kill(parent, sig)  # during the fork, as a ^C or a timer would
        return real()
    os.fork = fork
    try:
        batch.parse_all(TEXTS, processes=2)
        raise SystemExit('no exception')
    except kind:
        pass
    os.fork = real
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, ()), 'SIGINT left blocked'
    children = open(f'/proc/self/task/{parent}/children').read().split()
    assert children == [], children  # killed and reaped
print('same')
""")
