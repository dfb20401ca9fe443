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


def test_other_code_is_another_key(tmp_path: Path) -> None:
    """An edited module of the package (its size or time of change) changes every key."""
    package = tmp_path / "dsl"
    shutil.copytree(Path(dsl.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache._code_digest(package)
    assert cache._code_digest(package) == before
    module = package / "syntax" / "lower.py"
    later = time.time() + 5
    os.utime(module, (later, later))
    assert cache._code_digest(package) != before


def test_a_cache_that_cannot_be_written_changes_nothing(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)
    expected = _plain(parse_all([job]))
    cache_home.parent.mkdir(parents=True)
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


def test_a_result_that_cannot_be_pickled_is_not_kept(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = ("p.policy", "policy p\nrule r: block category 'A'\n", False)

    def too_deep(*args: Any, **kwargs: Any) -> bytes:
        raise RecursionError("maximum recursion depth exceeded while pickling an object")

    monkeypatch.setattr(cache.pickle, "dumps", too_deep)
    assert _plain(cache.parse_cached([job])) == _plain(batch.parse_all([job]))
    assert not list(cache_home.iterdir())


def test_the_scans_spawned_workers_read_the_parses_the_scan_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spawned worker loads the set from its files' texts (``load_sources``): the parses
    the scan's process kept, under the same names, are read back."""
    from dsl.checking.loader import load_paths
    from dsl.scan import load_sources

    loaded = load_paths([ROOT / "tests" / "scan_policies"])
    parsed = _counting(monkeypatch)
    policies = load_sources(dict(loaded.sources))
    assert parsed == [] and policies.policy_hash == dsl.load(ROOT / "tests" / "scan_policies").policy_hash


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
