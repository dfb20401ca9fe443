"""Language server benchmark: `policy lsp` driven over standard input and output by
pygls's client, on a generated 1,000-rule policy (bench/gen.py).

- start-up: from starting `policy lsp` to its answer to `initialize`, against starting
  `policy --version` (the interpreter and the CLI's imports) measured in the same run;
- diagnostics: from an edit (`didChange`) to the diagnostics of the new text, for edits
  near the top, in the middle and near the end (an unknown set name, a syntax error, each
  fixed; a category changed); against the same check called in this process on the whole
  text (``parse_source`` and ``api.check_loaded``, no analysis): the server parses from
  the statement edited (``dsl.lsp.incremental``);
- hover and definition: the answer's latency on a rule name, a set and a ladder.

Targets (issue 15): diagnostics within 200 ms, hover and definition within 50 ms,
start-up under 1 s.

    .venv/bin/python bench/bench_lsp.py [--rules 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen import category_name, policy_text  # noqa: E402
from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from dsl.api import check_loaded  # noqa: E402
from dsl.checking.loader import loaded_from, parse_source  # noqa: E402

SERVER = [sys.executable, "-m", "dsl", "lsp"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def startup_baseline(rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dsl", "--version"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Bench:
    def __init__(self) -> None:
        self.client = LanguageClient("bench", "0")
        self.arrived: dict[str, tuple[float, list[T.Diagnostic]]] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: T.PublishDiagnosticsParams) -> None:
            self.arrived[params.uri] = (time.perf_counter(), list(params.diagnostics))

        @self.client.feature(T.WINDOW_LOG_MESSAGE)
        def logged(params: T.LogMessageParams) -> None:
            return None

    async def start(self, folder: Path) -> float:
        t0 = time.perf_counter()
        await self.client.start_io(*SERVER)
        await self.client.initialize_async(T.InitializeParams(
            capabilities=T.ClientCapabilities(), workspace_folders=[T.WorkspaceFolder(folder.as_uri(), "bench")],
            initialization_options={"analysisDelay": 3600}))
        took = time.perf_counter() - t0
        self.client.initialized(T.InitializedParams())
        return took

    async def diagnostics_after(self, send: float, uri: str, codes: list[str]) -> float:
        while True:
            got = self.arrived.get(uri)
            if got is not None and got[0] >= send and sorted(str(d.code) for d in got[1]) == codes:
                return got[0] - send
            if time.perf_counter() - send > 60:
                raise RuntimeError(f"no diagnostics {codes} within 60 s; the last: {got}")
            await asyncio.sleep(0.001)

    async def edit(self, uri: str, text: str, version: int, codes: list[str]) -> float:
        send = time.perf_counter()
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [T.TextDocumentContentChangeWholeDocument(text)]))
        return await self.diagnostics_after(send, uri, codes)

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def position(text: str, word: str) -> T.Position:
    at = text.index(word)
    return T.Position(text.count("\n", 0, at), at - (text.rfind("\n", 0, at) + 1))


async def main_async(rules: int, rounds: int) -> None:
    text = policy_text(rules)
    def broken(i: int) -> str:
        return text.replace(f"rule r{i}: from", f"rule r{i} from")

    def typed(i: int) -> str:
        return text.replace(f"'{category_name(i)}'", f"'{category_name(i)}x'")

    edits = [("top: unknown set", text.replace("any keywords", "any keywordz"), ["P200"]),
             ("top: fixed", text, []),
             ("middle: syntax error", broken(rules // 2), ["P100"]),
             ("middle: fixed", text, []),
             ("middle: typing", typed(rules // 2), []),
             ("end: syntax error", broken(rules - 3), ["P100"]),
             ("end: fixed", text, [])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "generated.policy"
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        baseline = {label: [] for label, _t, _c in edits}  # type: dict[str, list[float]]
        for _ in range(rounds):
            for label, t, _c in edits:
                t0 = time.perf_counter()
                loaded = loaded_from([(str(path), t, *parse_source(str(path), t))])
                check_loaded(loaded, analysis=False)
                baseline[label].append(time.perf_counter() - t0)
        bench = Bench()
        started = await bench.start(folder)
        base_start = startup_baseline(3)
        print(f"start-up of policy lsp (to the answer to initialize): {ms(started)}; "
              f"policy --version: {ms(base_start)}; ratio {started / base_start:.2f}x (target < 1 s)")
        send = time.perf_counter()
        bench.client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "policy", 1, text)))
        first = await bench.diagnostics_after(send, uri, [])
        print(f"{rules} rules, {len(text):,} characters: diagnostics after opening {ms(first)}")
        version = 1
        lat: dict[str, list[float]] = {label: [] for label, _t, _c in edits}
        for _ in range(rounds):
            for label, t, codes in edits:
                version += 1
                lat[label].append(await bench.edit(uri, t, version, codes))
        print(f"diagnostics after an edit (median of {rounds}; target 200 ms):")
        for label, _t, _c in edits:
            m, b = statistics.median(lat[label]), statistics.median(baseline[label])
            print(f"  {label:21s} {ms(m):>7s}   whole parse and check in-process {ms(b):>7s}   ratio {m / b:.2f}x")
        await hover_and_definition(bench, uri, text, rounds)
        await first_hover_after_an_edit(bench, uri, text, rounds, version)
        await bench.stop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def hover_and_definition(bench: Bench, uri: str, text: str, rounds: int) -> None:
    doc = T.TextDocumentIdentifier(uri)
    targets = {"rule name": "keywords:", "set": "any keywords", "ladder": "penalty escalate"}
    print(f"hover and definition (median of {rounds * 4}; target 50 ms):")
    for label, word in targets.items():
        at = position(text, word)
        if word.startswith(("any ", "penalty ")):
            at = T.Position(at.line, at.character + len(word.split()[0]) + 1)
        for name in ("hover", "definition"):
            times = []
            for _ in range(rounds * 4):
                t0 = time.perf_counter()
                if name == "hover":
                    found: object = await bench.client.text_document_hover_async(T.HoverParams(doc, at))
                else:
                    found = await bench.client.text_document_definition_async(T.DefinitionParams(doc, at))
                times.append(time.perf_counter() - t0)
                assert found, (name, label)
            print(f"  {name:10s} on a {label:9s} {ms(statistics.median(times)):>6s}")


async def first_hover_after_an_edit(bench: Bench, uri: str, text: str, rounds: int, version: int) -> None:
    """A hover on a rule name sent right after an edit near the end: it waits for the new
    text's parse, and builds the index and the checked model of the new snapshot."""
    doc = T.TextDocumentIdentifier(uri)
    at = position(text, "keywords:")
    times = []
    for n in range(rounds * 2):
        version += 1
        edited = text + f"# edit {n}\n"
        bench.client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [T.TextDocumentContentChangeWholeDocument(edited)]))
        t0 = time.perf_counter()
        found = await bench.client.text_document_hover_async(T.HoverParams(doc, at))
        times.append(time.perf_counter() - t0)
        assert found
        await bench.diagnostics_after(t0, uri, [])
    print(f"  hover right after an edit (new snapshot, index and model) {ms(statistics.median(times)):>6s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main_async(args.rules, args.rounds))


if __name__ == "__main__":
    main()
