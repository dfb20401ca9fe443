"""``forking.Meanwhile``: a function computed by a forked child while this process goes
on, and ``fingerprint.hash_while``, which hashes a large set so while it is planned
(issue 13: loading)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import dsl
from dsl import fingerprint, forking
from dsl.forking import Meanwhile

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child is forked on Linux only")

_can_fork = forking.can_fork  # the real one


@pytest.fixture(autouse=True)
def _fork_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests fork whatever threads the test run has started (a worker of pytest-xdist
    has some; the child only computes and ends)."""
    monkeypatch.setattr(forking, "can_fork", lambda **_: True)


def _twice(x: int) -> dict[str, int]:
    return {"x": x * 2, "pid": os.getpid()}


def _fails() -> None:
    raise ValueError("in the child")


def _sleeps() -> None:
    time.sleep(60)


def test_the_child_computes_it_meanwhile() -> None:
    with Meanwhile(_twice, 21) as later:
        found = later.result()
    assert found["x"] == 42 and found["pid"] != os.getpid()


def test_a_large_result_comes_whole() -> None:
    with Meanwhile(lambda: "x" * 1_000_000) as later:
        assert later.result() == "x" * 1_000_000


def test_a_child_that_raises_or_is_killed_delivers_none() -> None:
    with Meanwhile(_fails) as later:
        assert later.result() is None
    with Meanwhile(_sleeps) as later:
        assert later.pid is not None
        os.kill(later.pid, 9)
        assert later.result() is None


def test_leaving_the_block_kills_the_child_and_reaps_it() -> None:
    with pytest.raises(KeyboardInterrupt), Meanwhile(_sleeps) as later:  # noqa: PT012
        pid = later.pid
        raise KeyboardInterrupt
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already: no such child


def test_no_fork_where_sigchld_is_ignored() -> None:
    import signal

    before = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert not _can_fork()
    finally:
        signal.signal(signal.SIGCHLD, before)


def test_no_child_where_forking_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forking, "can_fork", lambda **_: False)
    with Meanwhile(_twice, 1) as later:
        assert later.pid is None and later.result() is None


POLICY = """policy p
  timezone 'Asia/Shanghai'
rule a: from 2021-10-08 block category 'Blockchain Miners'
rule b: flag title mentions 'bitcoin'
"""


def _hash_of_fresh_set(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("set")
    (folder / "p.policy").write_text(POLICY, encoding="utf-8")
    return dsl.load(folder).policy_hash


def test_a_large_sets_hash_comes_from_the_child_and_is_the_one_computed_here(
        monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    expected = _hash_of_fresh_set(tmp_path_factory)  # computed here: the set is small
    monkeypatch.setattr(fingerprint, "MEANWHILE_RULES", 1)  # now it is "large": a child hashes it
    children: list[int | None] = []

    class Watched(Meanwhile):
        def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
            super().__init__(fn, *args)
            children.append(self.pid)

    monkeypatch.setattr(fingerprint, "Meanwhile", Watched)
    assert _hash_of_fresh_set(tmp_path_factory) == expected
    assert len(children) == 1 and children[0] is not None


def test_a_large_sets_hash_is_computed_here_when_no_child_delivers(
        monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    expected = _hash_of_fresh_set(tmp_path_factory)
    monkeypatch.setattr(fingerprint, "MEANWHILE_RULES", 1)
    monkeypatch.setattr(fingerprint, "Meanwhile", lambda *args: _NoChild())
    assert _hash_of_fresh_set(tmp_path_factory) == expected


class _NoChild:
    pid = None

    def __enter__(self) -> _NoChild:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def result(self) -> None:
        return None


def test_a_child_reaped_by_another_still_gives_its_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SIGCHLD ignored, the kernel reaps children itself: waitpid finds none (no fork
    is made then, ``can_fork``; a handler set after the fork does the same)."""
    import signal

    real = Meanwhile.__init__

    def then_ignore(self: Meanwhile, fn: Callable[..., Any], *args: Any) -> None:
        real(self, fn, *args)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    monkeypatch.setattr(Meanwhile, "__init__", then_ignore)
    before = signal.getsignal(signal.SIGCHLD)
    try:
        with Meanwhile(_twice, 4) as later:
            assert later.result()["x"] == 8
        with Meanwhile(_sleeps) as later:
            pass  # killed and reaped on leaving, without an error
    finally:
        signal.signal(signal.SIGCHLD, before)


def test_a_signal_during_the_fork_leaves_no_child_behind() -> None:
    """A ^C that comes during the fork is held until the child is known, then raised from
    the constructor, which kills and reaps the child: the ``with`` block was never entered,
    so the child stayed a zombie and its pipe open. In a process of its own: one thread, as
    where a fork is made (a test run's threads would take the signal in its stead)."""
    import subprocess

    script = """
import os, signal, time
from dsl.forking import Meanwhile
real = os.fork
parent = os.getpid()
def fork():
    if os.getpid() == parent:
        os.kill(parent, signal.SIGINT)  # a ^C during the fork
    return real()
os.fork = fork
try:
    with Meanwhile(time.sleep, 60):
        raise SystemExit('the block was entered')
except KeyboardInterrupt:
    pass
os.fork = real
assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, ()), 'SIGINT left blocked'
children = open(f'/proc/self/task/{parent}/children').read().split()
assert children == [], children
print('none')
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.strip() == "none", ran.stdout + ran.stderr
