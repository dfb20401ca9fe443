"""``dsl.syntax.cache``: a file read again unchanged gives what its parse gives (spans and
diagnostics included) without a parse; anything else is parsed: another text, name or
kind of file, other code, a cache file damaged; a cache that cannot be written or is
turned off changes nothing but the time."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

import dsl
from dsl.checking.loader import is_test_file
from dsl.syntax import batch, cache
from dsl.syntax.batch import Job, parse_all

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "conformance"


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("POLICY_DSL_CACHE", raising=False)
    monkeypatch.setattr(cache, "_unlooked", None)
    return tmp_path / "cache" / "policy-dsl" / "parsed"


def _plain(results: list[Any]) -> list[Any]:
    """Everything a result holds, spans and diagnostics' extras included."""
    return [(attrs.asdict(file), [attrs.asdict(d) for d in diags]) for file, diags in results]


def _jobs(*folders: Path) -> list[Job]:
    files = sorted(p for folder in folders for p in folder.rglob("*.policy"))
    return [(str(p), p.read_text(encoding="utf-8"), is_test_file(p)) for p in files]


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names ``parse_all`` parses from now on."""
    parsed: list[str] = []

    def counted(jobs: list[Job], **kwargs: Any) -> Any:
        parsed.extend(name for name, _, _ in jobs)
        return parse_all(jobs, **kwargs)

    monkeypatch.setattr(cache, "parse_all", counted)
    return parsed


def test_a_file_read_again_gives_its_parse_without_parsing(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every policy and test file of the repository and of the conformance corpus: the
    results read back equal the parse's."""
    jobs = _jobs(ROOT / "policies", ROOT / "tests" / "scan_policies", *([CORPUS] if CORPUS.exists() else []))
    assert len(jobs) > 20
    expected = _plain(parse_all(jobs))
    parsed = _counting(monkeypatch)
    assert _plain(cache.parse_cached(jobs)) == expected
    assert len(parsed) == len(jobs) and len(list(cache_home.iterdir())) == len({_key for _key in map(cache._key, jobs)})
    parsed.clear()
    assert _plain(cache.parse_cached(jobs)) == expected
    assert parsed == []


def test_another_text_name_or_kind_of_file_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "policy p\nrule r: from 2021-10-08 block category 'A'\n"
    parsed = _counting(monkeypatch)
    cache.parse_cached([("p.policy", text, False)])
    for job in [("p.policy", text + "rule s: flag category 'B'\n", False), ("q.policy", text, False),
                ("p.policy", text, None)]:
        parsed.clear()
        file, diags = cache.parse_cached([job])[0]
        assert parsed == [job[0]] and file.path == job[0]
    parsed.clear()
    cache.parse_cached([("q.policy", text, False), ("p.policy", text, False)])
    assert parsed == []


def test_a_damaged_cache_file_is_parsed_again_and_written_anew(cache_home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    expected = _plain(cache.parse_cached([job]))
    (kept,) = cache_home.iterdir()
    for damage in (kept.read_bytes()[:40], b"", pickle.dumps("something else")[:3], pickle.dumps(("a", "b"))):
        kept.write_bytes(damage)
        parsed = _counting(monkeypatch)
        assert _plain(cache.parse_cached([job])) == expected and parsed == ["p.policy"]
        parsed.clear()
        assert _plain(cache.parse_cached([job])) == expected and parsed == []


def test_an_entry_damaged_where_it_still_unpickles_or_another_s_is_parsed_again(cache_home: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A byte changed inside a phrase ('bitcoin' read 'bitcoix') still unpickles: it was
    taken for the file's parse, and decisions changed. Two entries swapped, likewise.
    Each entry starts with a digest of its name and its pickle, checked first."""
    one = ("p.policy", "policy p\nrule r: block mentions 'bitcoin'\n", False)
    two = ("q.policy", "policy q\nrule s: flag mentions 'ether'\n", False)
    expected = _plain(cache.parse_cached([one, two]))
    first, second = cache_home / cache._key(one), cache_home / cache._key(two)
    good = first.read_bytes()
    first.write_bytes(good.replace(b"bitcoin", b"bitcoix"))
    assert first.read_bytes() != good and pickle.loads(first.read_bytes()[cache._SEAL:]) is not None
    parsed = _counting(monkeypatch)
    assert _plain(cache.parse_cached([one, two])) == expected and parsed == ["p.policy"]
    swapped = first.read_bytes(), second.read_bytes()
    first.write_bytes(swapped[1])
    second.write_bytes(swapped[0])
    parsed.clear()
    assert _plain(cache.parse_cached([one, two])) == expected and parsed == ["p.policy", "q.policy"]


def test_other_code_is_another_key(tmp_path: Path) -> None:
    """An edited module of the package (its size or time of change) changes every key."""
    package = tmp_path / "dsl"
    shutil.copytree(Path(dsl.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache._code_digest(package)
    assert cache._code_digest(package) == before
    module = package / "syntax" / "lower.py"
    later = time.time() + 5
    os.utime(module, (later, later))
    touched = cache._code_digest(package)
    assert touched != before
    # an edit of the same size that keeps the time of change (cp -p, tar, rsync): a new file
    edited = tmp_path / "lower.py"
    edited.write_bytes(module.read_bytes().replace(b"test", b"TEST", 1))
    os.utime(edited, ns=(module.stat().st_atime_ns, module.stat().st_mtime_ns))
    os.replace(edited, module)
    assert cache._code_digest(package) != touched


def test_a_cache_that_cannot_be_written_changes_nothing(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    expected = _plain(parse_all([job]))
    cache_home.parent.mkdir(parents=True, exist_ok=True)  # (made already where this process built Lark's tables)
    cache_home.write_text("a file where the directory would be")
    assert _plain(cache.parse_cached([job])) == expected
    cache_home.unlink()
    cache_home.mkdir()
    cache_home.chmod(0o500)
    try:
        if os.access(cache_home, os.W_OK):  # root writes anyway: the write fails another way
            monkeypatch.setattr(cache.tempfile, "mkstemp", _no_space)
        assert _plain(cache.parse_cached([job])) == expected
        assert not list(cache_home.iterdir())
    finally:
        cache_home.chmod(0o700)


def _no_space(*args: Any, **kwargs: Any) -> Any:
    raise OSError(28, "No space left on device")


def test_the_cache_turned_off_is_parse_all(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_DSL_CACHE", "off")
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    assert _plain(cache.parse_cached([job])) == _plain(parse_all([job]))
    assert not cache_home.exists()


def test_a_set_loads_the_same_from_the_cache(tmp_path: Path) -> None:
    """``dsl.load`` (through the loader): the same set, the same hash, the same decisions."""
    first = dsl.load(ROOT / "policies" / "alibaba")
    again = dsl.load(ROOT / "policies" / "alibaba")
    assert again.policy_hash == first.policy_hash
    listing = {"category": "Blockchain Miners", "title": "Antminer S19"}
    assert again.decide(listing, at="2021-10-20").to_dict() == first.decide(listing, at="2021-10-20").to_dict()


def test_the_directory_is_trimmed_to_the_files_last_read(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [(f"p{i}.policy", f"policy p{i}\nrule r: block category 'A{i}'\n", False) for i in range(6)]
    cache.parse_cached(jobs[:1])
    size = next(cache_home.iterdir()).stat().st_size
    monkeypatch.setattr(cache, "MAX_BYTES", size * 4 + size // 2)  # room for four
    past = time.time() - 100
    for i, job in enumerate(jobs[:4]):
        cache.parse_cached([job])
        os.utime(cache_home / cache._key(job), (past + i, past + i))
    cache.parse_cached(jobs[:1])  # read again: the last to go
    monkeypatch.setattr(cache, "_unlooked", None)  # the next write looks
    cache.parse_cached(jobs[4:])
    kept = {p.name for p in cache_home.iterdir()}
    assert kept == {cache._key(jobs[i]) for i in (0, 3, 4, 5)}


def test_a_write_abandoned_leaves_its_temporary_file_only_until_a_later_write(cache_home: Path) -> None:
    """A process killed between writing an entry and renaming it leaves ``.XXXXXXXX.tmp``:
    never read, and nothing removed it until the directory passed its size."""
    cache.parse_cached([("a.policy", "policy a\n", False)])
    old, fresh = cache_home / ".abandoned0.tmp", cache_home / ".writing01.tmp"
    for path in (old, fresh):
        path.write_bytes(b"x" * 100)
    past = time.time() - cache.ABANDONED - 60
    os.utime(old, (past, past))
    cache._unlooked = None  # a later process's first write
    cache.parse_cached([("b.policy", "policy b\n", False)])
    assert not old.exists() and fresh.exists()  # one being written now is left to its writer


def test_a_result_that_cannot_be_pickled_is_not_kept(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)

    def too_deep(*args: Any, **kwargs: Any) -> bytes:
        raise RecursionError("maximum recursion depth exceeded while pickling an object")

    monkeypatch.setattr(cache.pickle, "dumps", too_deep)
    assert _plain(cache.parse_cached([job])) == _plain(batch.parse_all([job]))
    assert not list(cache_home.iterdir())


def test_the_scans_spawned_workers_read_their_parses_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spawned worker loads the set from its files' texts (``load_sources``, which takes
    rules and tests in any file, as it did before the cache: ``parse``'s test_file=None);
    the next scan's workers read their parses back."""
    from dsl.checking.loader import load_paths
    from dsl.scan import load_sources

    sources = dict(load_paths([ROOT / "tests" / "scan_policies"]).sources)
    first = load_sources(sources)
    parsed = _counting(monkeypatch)
    again = load_sources(sources)
    assert parsed == []
    assert again.policy_hash == first.policy_hash == dsl.load(ROOT / "tests" / "scan_policies").policy_hash
    mixed = {"rules_test.policy": "policy p\nrule r: block category 'A'\n"}  # rules in a file named as tests
    assert load_sources(mixed).policy_hash == load_sources(mixed).policy_hash


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the second process is forked on Linux only")
def test_the_second_process_pickles_are_kept_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """A set parsed by two processes (``batch``): the pickles the second one delivered are
    written to the cache as they are (not pickled again), and read back as the parse."""
    monkeypatch.setattr(batch, "can_fork", lambda: True)  # whatever threads the test run has started
    jobs = _jobs(ROOT / "policies")
    delivered: list[bytes | None] = []

    def two_processes(jobs: list[Job], *, pickled: list[bytes | None]) -> Any:
        results = parse_all(jobs, processes=2, pickled=pickled)
        delivered.extend(pickled)
        return results

    monkeypatch.setattr(cache, "parse_all", two_processes)
    expected = _plain(parse_all(jobs, processes=1))
    assert _plain(cache.parse_cached(jobs)) == expected
    assert any(data is not None for data in delivered)
    parsed = _counting(monkeypatch)
    assert _plain(cache.parse_cached(jobs)) == expected and parsed == []


def test_a_file_name_that_is_not_utf8_is_kept_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name Python read with ``surrogateescape`` (bytes that are not UTF-8)."""
    job = ("caf\udce9.policy", "policy p\nrule r: block category 'A'\n", False)
    expected = _plain(parse_all([job]))
    assert _plain(cache.parse_cached([job])) == expected
    parsed = _counting(monkeypatch)
    assert _plain(cache.parse_cached([job])) == expected and parsed == []


def test_only_a_private_directory_is_used(tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pickle is code: the cache is used only in a directory of this user's that no one
    else may write into. A directory others may write into loses that right (one this
    user may not search or read gets those rights back); a symbolic
    link, or a parent others may write into (without the sticky bit), turns the cache off;
    a relative ``XDG_CACHE_HOME`` is ignored (the XDG specification)."""
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    cache_home.mkdir(parents=True)
    cache_home.chmod(0o777)
    assert cache.folder() == cache_home and cache_home.stat().st_mode & 0o777 == 0o755
    cache_home.chmod(0o600)  # this user's, but neither searchable nor listable: given back
    assert cache.folder() == cache_home and cache_home.stat().st_mode & 0o777 == 0o700
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    shutil.rmtree(cache_home)
    cache_home.symlink_to(elsewhere)
    assert cache.folder() is None
    assert _plain(cache.parse_cached([job])) == _plain(parse_all([job])) and not list(elsewhere.iterdir())
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    if os.geteuid() == 0:  # another user's directory open to all (giving it away takes root)
        os.chown(shared, 65534, 65534)
        assert cache.folder() is None and not list(shared.iterdir())
    shared.chmod(0o1777)  # as /tmp: no one may replace another user's directory
    assert cache.folder() == shared / "policy-dsl" / "parsed"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache.folder() == tmp_path / "home" / ".cache" / "policy-dsl" / "parsed"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user takes root")
def test_a_directory_of_another_user_is_not_used(cache_home: Path) -> None:
    cache_home.mkdir(parents=True)
    os.chown(cache_home, 65534, 65534)
    assert cache.folder() is None


def test_an_entry_that_is_not_a_file_of_ours_is_parsed_again(cache_home: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO (which a plain open would wait on) or a link under a result's name."""
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    expected = _plain(parse_all([job]))
    cache.parse_cached([job])
    kept = cache_home / cache._key(job)
    data = kept.read_bytes()
    kept.unlink()
    os.mkfifo(kept)
    parsed = _counting(monkeypatch)
    assert _plain(cache.parse_cached([job])) == expected and parsed == ["p.policy"]
    kept.unlink()
    (cache_home.parent / "planted").write_bytes(data)
    kept.symlink_to(cache_home.parent / "planted")
    parsed.clear()
    assert _plain(cache.parse_cached([job])) == expected and parsed == ["p.policy"]


def test_a_temporary_copy_is_not_kept(cache_home: Path) -> None:
    """`policy diff`'s copy of a revision (``compile_paths(cache=False)``)."""
    from dsl.checking.frontend import compile_paths

    model, _, _ = compile_paths([ROOT / "policies" / "alibaba"], cache=False)
    assert model is not None and not (cache_home.exists() and list(cache_home.iterdir()))


def test_lark_s_files_are_used_only_if_this_user_s(tmp_path: Path) -> None:
    """Lark loads its tables' pickle itself: a link, or another user's file, where it
    would be is removed first (``cachedir.own_file_or_none``), as a FIFO is."""
    from dsl.syntax.cachedir import own_file_or_none

    mine = tmp_path / "lark-mine.cache"
    mine.write_bytes(b"tables")
    assert own_file_or_none(mine) == mine and mine.exists()
    assert own_file_or_none(tmp_path / "lark-missing.cache") == tmp_path / "lark-missing.cache"
    link = tmp_path / "lark-link.cache"
    link.symlink_to(mine)
    assert own_file_or_none(link) == link and not link.is_symlink() and mine.exists()
    fifo = tmp_path / "shapes-fifo.json"
    os.mkfifo(fifo)
    assert own_file_or_none(fifo) == fifo and not fifo.exists()
    if os.geteuid() == 0:  # (giving a file to another user takes root)
        theirs = tmp_path / "lark-theirs.cache"
        theirs.write_bytes(b"planted")
        os.chown(theirs, 65534, 65534)
        assert own_file_or_none(theirs) == theirs and not theirs.exists()


def test_no_home_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HOME and a user the system does not know (a container's): the cache is off, and
    the command runs."""
    from pathlib import Path as P

    from dsl.syntax import cachedir

    def unknown() -> P:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(cachedir.Path, "home", staticmethod(unknown))
    assert cachedir.cache_folder() is None and cache.folder() is None
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    assert _plain(cache.parse_cached([job])) == _plain(parse_all([job]))


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's home takes root to make")
def test_nothing_is_made_in_another_user_s_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sudo`` keeping HOME: root makes nothing in the user's home (it would turn the
    user's own cache off), and parses without the cache."""
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache.folder() is None and not list(home.iterdir())
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    assert _plain(cache.parse_cached([job])) == _plain(parse_all([job])) and not list(home.iterdir())
