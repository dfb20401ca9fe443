"""The sample service of docs/embedding.md runs as shown: it decides, explains on request
(`why_not` too), refuses a body over its 1 MiB limit before reading it, and reports bad
input as 400."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app() -> Any:
    text = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    section = text.split("## A small service", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {"__name__": "sample"}
    old = Path.cwd()
    try:
        import os

        os.chdir(ROOT)  # the sample loads "policies/"
        exec(compile(code.group(1), "docs/embedding.md", "exec"), namespace)
    finally:
        os.chdir(old)
    return namespace["app"]


def call(app: Any, body: bytes, path: str = "/decide", length: int | None = None) -> tuple[str, Any]:
    status: list[str] = []

    class Input(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            assert size is not None and 0 <= size <= 1 << 20, "the service reads at most its limit"
            return super().read(size)

    environ = {"PATH_INFO": path, "CONTENT_LENGTH": str(len(body) if length is None else length),
               "wsgi.input": Input(body)}
    out = b"".join(app(environ, lambda s, headers: status.append(s)))
    return status[0], json.loads(out)


def test_decides_and_explains_on_request(app: Any) -> None:
    listing = {"platform": "xianyu", "category": "Blockchain Miners", "title": "二手比特币矿机 9成新"}
    status, body = call(app, json.dumps({"listing": listing, "at": "2021-10-20", "prior_violations": 1}).encode())
    assert status == "200 OK" and body["effect"] == "block" and body["at"] == "2021-10-20T00:00:00"
    assert "explanation" not in body
    request = {"listing": listing, "at": "2021-10-20", "why_not": "alibaba-crypto-2021.miners"}
    status, body = call(app, json.dumps(request).encode())
    assert status == "200 OK" and "Why not alibaba-crypto-2021.miners (block): it applied." in body["explanation"]
    status, body = call(app, json.dumps({**request, "why_not": "no-such-rule"}).encode())
    assert status == "400 Bad Request" and body["field"] == "why_not"


def test_a_body_over_the_limit_is_refused_unread(app: Any) -> None:
    huge = json.dumps({"listing": {"title": "x" * (2 << 20)}, "explain": True}).encode()
    status, body = call(app, huge)
    assert status == "413 Content Too Large"
    status, _ = call(app, b"{}", length=-1)
    assert status == "413 Content Too Large"


@pytest.mark.parametrize("listings", [None, 5, "abc", {"title": "window"}])
def test_listings_that_are_no_batch_are_a_bad_request(app: Any, listings: Any) -> None:
    """`"listings"` that is no list (null, a number, text, one listing as an object) is a
    400 naming the field, as other bad input is; a list of listings is decided."""
    status, body = call(app, json.dumps({"listings": listings, "at": "2021-10-20"}).encode(), "/decide-many")
    assert status == "400 Bad Request" and body["field"] == "listings"
    assert body["error"].startswith("listings: expected a list or another iterable of listings")
    status, body = call(app, json.dumps({"listings": [{"platform": "ebay"}], "at": "2021-10-20"}).encode(),
                        "/decide-many")
    assert status == "200 OK" and [d["effect"] for d in body] == ["allow"]
