"""An mkdocs hook (mkdocs.yml: ``hooks:``): one page per diagnostic code, generated from
docs/checks.md at build time.

docs/checks.md stays the single source, written by hand and read whole on GitHub: an
introduction, one ``## P001 — title`` section per code, then sections that are not codes
(``## Configuration and suppression``). On the site:

- each code section becomes the page ``checks/P001.md`` (URL ``checks/P001/``, the
  ``helpUri`` of SARIF results and the link in the language server's hover:
  ``dsl.diagnostics.docs_url``), with its relative links rewritten for the folder one
  level down;
- ``checks.md`` itself is shown as its introduction, a table of the codes linking to their
  pages, and the sections that are not codes;
- the navigation entry whose target is ``checks.md`` becomes a section: that page first,
  then every code page in order.

Nothing is written into docs/: the pages exist only in the build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SOURCE = "checks.md"
FOLDER = "checks"

_HEADING = re.compile(r"^## (?P<title>.+)$")
_CODE = re.compile(r"^(?P<code>P\d{3}) — ")
_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def split(text: str) -> tuple[str, list[tuple[str, str, str]], str]:
    """checks.md as (introduction, [(code, heading, body)], the sections that are not codes).

    A heading is a ``## `` line outside a fenced block; the introduction is what comes
    before the first one (a ``---`` line closing it is dropped)."""
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            sections.append((m["title"], []))
        elif sections:
            sections[-1][1].append(line)
        else:
            intro.append(line)
    codes: list[tuple[str, str, str]] = []
    rest: list[str] = []
    for title, body in sections:
        code = _CODE.match(title)
        if code:
            codes.append((code["code"], title, "\n".join(body).strip("\n")))
        else:
            rest.append(f"## {title}\n" + "\n".join(body).rstrip("\n"))
    preface = "\n".join(intro).rstrip("\n").removesuffix("---").rstrip("\n")
    return preface, codes, "\n\n".join(rest)


def relink(body: str) -> str:
    """``body``'s relative links as seen from ``checks/P001.md``: ``x.md`` becomes
    ``../x.md``, ``#anchor`` becomes ``../checks.md#anchor``; URLs stay as they are."""
    def fix(m: re.Match[str]) -> str:
        target = m["target"]
        if _SCHEME.match(target) or target.startswith("/"):
            return m[0]
        if target.startswith("#"):
            return f"]({'../' + SOURCE}{target})"
        return f"](../{target})"
    return _LINK.sub(fix, body)


def code_page(heading: str, body: str) -> str:
    return (f"# {heading}\n\n{relink(body)}\n\n---\n\n"
            f"[Every code](../{SOURCE}) · [Configuration and suppression](../{SOURCE}#configuration-and-suppression)\n")


def overview(text: str) -> str:
    """What ``checks.md`` shows on the site: its introduction, a table of the codes, and
    the sections that are not codes."""
    preface, codes, rest = split(text)
    rows = "\n".join(f"| [{code}]({FOLDER}/{code}.md) | {heading.split(' — ', 1)[1]} |"
                     for code, heading, _ in codes)
    return f"{preface}\n\n## The codes\n\n| code | finding |\n|---|---|\n{rows}\n\n{rest}\n"


def _codes(config: Any) -> list[str]:
    text = (Path(config["docs_dir"]) / SOURCE).read_text(encoding="utf-8")
    return [code for code, _, _ in split(text)[1]]


def _expand(nav: Any, pages: list[str]) -> Any:
    """The navigation with the entry ``{title: checks.md}`` made a section of the overview
    and the code pages."""
    if isinstance(nav, list):
        return [_expand(item, pages) for item in nav]
    if isinstance(nav, dict):
        return {title: ([SOURCE, *pages] if target == SOURCE else _expand(target, pages))
                for title, target in nav.items()}
    return nav


# ------------------------------------------------------------------ mkdocs events


def on_config(config: Any) -> Any:
    if config["nav"]:
        config["nav"] = _expand(config["nav"], [f"{FOLDER}/{code}.md" for code in _codes(config)])
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = (Path(config["docs_dir"]) / SOURCE).read_text(encoding="utf-8")
    for code, heading, body in split(text)[1]:
        files.append(File.generated(config, f"{FOLDER}/{code}.md", content=code_page(heading, body)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri == SOURCE:
        return overview(markdown)
    return markdown
