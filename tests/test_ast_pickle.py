"""The AST's compact pickles (``dsl.syntax.ast._compact_pickle``): every node, with every
span, comes back equal field by field under every pickle protocol and through ``copy``,
a parse's spans sharing their file's lines again, spans given as numbers and absent
ones included; a fresh process unpickles them (the makers are found by name)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from dsl.span import Span
from dsl.syntax import ast as A
from dsl.syntax import parse

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "policy broken\nrule bad: block category\nrule ok: flag exists seller.id because 'why'\n"


def _plain(x: Any) -> Any:
    """``x`` with every field, spans (as their seven numbers) and node classes included."""
    if isinstance(x, Span):
        return ("Span", x._key())
    if attrs.has(type(x)):
        return (type(x).__name__, {a.name: _plain(getattr(x, a.name)) for a in attrs.fields(type(x))})
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    return x


def _files() -> list[A.File]:
    """The sample policies and their tests, a file with a syntax error, and a node with
    a span of numbers and a None one."""
    paths = sorted((ROOT / "policies").rglob("*.policy"))
    files = [parse(p.read_text(encoding="utf-8"), str(p))[0] for p in paths]
    assert any(f.tests_for is not None or "_test" in f.path for f in files)
    files.append(parse(BROKEN, "broken.policy")[0])
    assert files[-1].unparsed
    given = A.Rule(A.Ref("r"), "block", if_=A.Const(True), span=Span("f", 1, 1, 1, 2, 0, 1))
    return [*files, A.File("f", None, (given,))]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol(protocol: int) -> None:
    files = _files()
    back = pickle.loads(pickle.dumps(files, protocol=protocol))
    assert _plain(back) == _plain(files) and back == files
    rules = [s for s in back[0].statements if isinstance(s, A.Rule)]
    assert rules[0].span is not None and rules[1].head is not None
    assert rules[0].span._src is rules[1].head._src  # a file's lines travel once
    assert back[-1].statements[0].span == Span("f", 1, 1, 1, 2, 0, 1) and back[-1].statements[0].head is None


def test_copy_and_deepcopy() -> None:
    files = _files()
    assert _plain(copy.deepcopy(files)) == _plain(files)
    rule = next(s for s in files[0].statements if isinstance(s, A.Rule))
    shallow = copy.copy(rule)
    assert shallow is not rule and _plain(shallow) == _plain(rule) and shallow.if_ is rule.if_


def test_every_node_class_is_compact() -> None:
    """A node class added later gets its compact pickle too (not attrs' state dict)."""
    for cls in vars(A).values():
        if isinstance(cls, type) and attrs.has(cls) and cls.__module__ == A.__name__:
            assert "__reduce_ex__" in vars(cls), cls
            assert getattr(A, f"_make_{cls.__name__}").__module__ == A.__name__


def test_a_fresh_process_unpickles() -> None:
    data = pickle.dumps(_files())
    code = "import pickle, sys; files = pickle.load(sys.stdin.buffer); print(len(files[0].statements))"
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert int(out.stdout) == len(_files()[0].statements)
