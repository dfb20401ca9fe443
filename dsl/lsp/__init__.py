"""`policy lsp`: the language server (docs/editors.md).

Built on pygls over the same front end as the command line: the parser, the checks, the
configuration and suppressions, the analysis, the formatter, the test runner and the
evaluators. Nothing here restates what a policy means; each module does one job for the
editor:

- ``server``: the pygls server, its features wired to the modules below, stdio or TCP;
- ``project``: which files a document is checked with (its workspace folder, as `policy
  check FOLDER` reads it, with the editor's unsaved buffers), their parses, cached;
- ``positions``: spans and offsets in the protocol's positions (UTF-16 by default);
- ``diagnostics``: syntax, names and types as the author types; the analysis after a
  pause, in a worker process (``worker``) that an edit kills;
- ``navigation``: where sets, ladders, rules, fields and policies are declared and named;
  definition, references, document and workspace symbols;
- ``hover``, ``completion``, ``actions`` (quick fixes and formatting), ``lenses`` (run a
  test or assertion; decide a policy's ``samples.jsonl``).
"""

from __future__ import annotations

__all__ = ["serve"]


def serve(tcp_port: int | None = None, host: str = "127.0.0.1") -> None:
    """Run the server on standard input and output, or on ``host:tcp_port``."""
    from .server import build_server

    server = build_server()
    if tcp_port is None:
        server.start_io()
    else:
        server.start_tcp(host, tcp_port)
