"""The documentation site (mkdocs.yml over docs/, the Material theme): it builds with
``--strict``, so a broken link or anchor fails here; every diagnostic code has its page
(generated from docs/checks.md by tools/checks_pages.py); and the address that SARIF's
``helpUri`` and hover text link to is the site's."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from dsl.checking.render import render_sarif
from dsl.diagnostics import CODES, DOCS_URL, docs_url, make
from dsl.span import Span

ROOT = Path(__file__).resolve().parents[1]


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("checks_pages", ROOT / "tools" / "checks_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict``. Not ``-q``: it hides the warnings that --strict counts,
    and a broken link then passes."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"),
                           "-d", str(site)], cwd=root, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build(ROOT, out)
    assert done.returncode == 0, f"mkdocs build --strict fails:\n{done.stdout}\n{done.stderr}"
    return out


def config() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_site_url_is_where_help_links_point() -> None:
    assert config()["site_url"] == DOCS_URL
    assert DOCS_URL.endswith("/")
    assert docs_url("P201") == DOCS_URL + "checks/P201/"


def test_sarif_rules_link_to_their_page() -> None:
    diag = make("P201", "unknown ladder 'escalte'", Span("a.policy", 1, 1, 1, 2))
    log = render_sarif([diag], {}, tool_version="0")
    assert f'"helpUri": "{docs_url("P201")}"' in log


def test_every_code_has_a_page(site: Path) -> None:
    for code in CODES:
        page = site / docs_url(code).removeprefix(DOCS_URL) / "index.html"
        assert page.is_file(), f"{code}: no page at {page}"
        html = page.read_text(encoding="utf-8")
        assert re.search(rf"<h1[^>]*>{code} — ", html), code
    overview = (site / "checks" / "index.html").read_text(encoding="utf-8")
    for code in CODES:
        assert f'href="{code}/"' in overview, code
    assert 'id="configuration-and-suppression"' in overview


def test_navigation_by_task() -> None:
    nav = config()["nav"]
    assert isinstance(nav, list)
    titles = [next(iter(entry)) for entry in nav]
    assert titles == ["Home", "Write", "Check", "Test", "Decide", "Scan", "Embed", "Reference"]
    listed = set(re.findall(r"[\w-]+\.md", yaml.safe_dump(nav)))
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert listed == on_disk, f"pages not in the navigation: {on_disk - listed}; missing: {listed - on_disk}"


def test_the_hook_splits_checks_md() -> None:
    pages = hook()
    intro, codes, rest = pages.split((ROOT / "docs" / "checks.md").read_text(encoding="utf-8"))
    assert [code for code, _, _ in codes] == sorted(CODES)
    assert intro.startswith("# Diagnostics reference") and not intro.endswith("---")
    assert rest.startswith("## Configuration and suppression")
    assert pages.relink("[a](language.md#x) [b](#configuration-and-suppression) [c](https://e.org/x.md)") == \
        "[a](../language.md#x) [b](../checks.md#configuration-and-suppression) [c](https://e.org/x.md)"


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    """--strict with validation at warn: a link to a missing page, or to a missing anchor,
    in a hand-written page or in a code's section, stops the build."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "tools", tmp_path / "tools")
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    checks = tmp_path / "docs" / "checks.md"
    original = checks.read_text(encoding="utf-8")
    for broken in ("[x](no-such-page.md)", "[x](language.md#no-such-anchor)", "[x](#no-such-anchor)"):
        checks.write_text(original.replace("## P201 — unknown ladder\n", f"## P201 — unknown ladder\n\n{broken}\n"),
                          encoding="utf-8")
        done = build(tmp_path, tmp_path / "site")
        assert done.returncode != 0, f"{broken}: the build passes"
        assert "no-such" in done.stderr, done.stderr
