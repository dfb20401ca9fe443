"""Writing a scan's output: to a temporary file beside the final name, renamed over it at
the end (``dsl.atomic.replace_with``: synced, the old file's mode kept), so that a reader, a failed scan or a full disk
never leaves a half-written file under the final name. Parquet is written by pyarrow's
Parquet writer (``penalty`` a struct), CSV by pyarrow's CSV writer, both in a thread of
their own (``_Behind``), JSON lines as text."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..atomic import Temporary, remove_abandoned, replace_with
from ..checking.loader import UsageError
from ..signals import held
from .schema import arrow_schema

__all__ = ["Writer", "unwritable"]

QUEUED = 4
"""The Arrow pieces that may wait for the writer's thread (then the scan waits for it)."""


def unwritable(option: str, path: object, e: OSError) -> UsageError:
    """The error of an output (``--out``, ``--report``) that cannot be written."""
    return UsageError(f"{option} '{path}': cannot be written: {e.strerror or e}")


class _Behind:
    """Arrow pieces written by a thread of its own: pyarrow's writers let go of the GIL
    while they encode and write, so the scan decides the next batches meanwhile (on the
    benchmark's million records, the Parquet output costs 0.16 s of the scan's process
    alone). The first error of a write is raised by the next ``put`` or by ``finish``;
    the pieces after it are dropped (the output is then thrown away)."""

    def __init__(self, write: Callable[[pa.RecordBatch], None]):
        self._write = write
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=QUEUED)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="policy-scan-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._failed is None:
                try:
                    self._write(piece)
                except BaseException as e:  # noqa: BLE001 - raised in the scan's thread
                    self._failed = e

    def put(self, piece: pa.RecordBatch) -> None:
        self._raise()
        self._queue.put(piece)

    def finish(self) -> None:
        """Write what is queued and end the thread; raise the first error of a write."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._failed is not None:
            raise self._failed


class Writer:
    """The output of one scan, open under a temporary name until ``commit``. Arrow pieces
    are written by a thread (``_Behind``), started at the first and ended by ``pause``
    (before the scan forks its workers: a fork keeps only the calling thread) or at the
    end. An output that cannot be written (a full disk) is a usage error naming ``--out``."""

    def __init__(self, path: str, out_format: str):
        self.path = Path(os.path.realpath(path))
        self.out_format = out_format
        remove_abandoned(self.path)  # what a scan of the same output killed before its end left
        try:
            self._claim = Temporary(self.path)
        except OSError as e:
            raise unwritable("--out", path, e) from None
        self.temp = self._claim.name
        self._text: IO[str] | None = None
        self._arrow: Any = None
        self._behind: _Behind | None = None
        try:
            if out_format == "jsonl":
                # a lone surrogate (only ever in a JSON string) written as its escape, ``\ud800``
                self._text = open(self.temp, "w", encoding="utf-8", errors="backslashreplace", newline="")
            elif out_format == "parquet":
                schema = arrow_schema("parquet")
                # no dictionary for the ids (each one distinct: a fifth of the write's time, a bigger file)
                self._arrow = pq.ParquetWriter(self.temp, schema, use_dictionary=[n for n in schema.names if n != "id"])
            else:
                self._arrow = pa_csv.CSVWriter(self.temp, arrow_schema("csv"))
        except OSError as e:
            self.abort()
            raise UsageError(f"--out '{path}': cannot be written: {e}") from None

    def write(self, piece: pa.RecordBatch | str) -> None:
        try:
            if self._text is not None:
                assert isinstance(piece, str)
                self._text.write(piece)
            else:
                assert isinstance(piece, pa.RecordBatch)
                self._behind = self._behind or _Behind(self._arrow_write)
                self._behind.put(piece)
        except OSError as e:
            raise unwritable("--out", self.path, e) from None

    def _arrow_write(self, piece: pa.RecordBatch) -> None:
        if self.out_format == "parquet":
            self._arrow.write_batch(piece)
        else:
            self._arrow.write(piece)

    def pause(self) -> None:
        """Write what is queued and end the writer's thread (the next ``write`` starts
        another)."""
        behind, self._behind = self._behind, None
        if behind is not None:
            try:
                behind.finish()
            except OSError as e:
                raise unwritable("--out", self.path, e) from None

    def _close(self) -> None:
        behind, self._behind = self._behind, None
        try:
            if behind is not None:
                behind.finish()
        finally:
            if self._text is not None:
                self._text.close()
                self._text = None
            if self._arrow is not None:
                self._arrow.close()
                self._arrow = None

    def commit(self) -> None:
        """Close the output and give it its final name."""
        try:
            self._close()
            replace_with(self.temp, self.path)
        except OSError as e:
            self.abort()
            raise unwritable("--out", self.path, e) from None
        self._claim.release()

    def abort(self) -> None:
        """Close and remove the temporary file: the final name is left as it was. A second
        ^C or SIGTERM waits for the end of this (``signals.held``)."""
        with held():
            try:
                self._close()
            except Exception:  # noqa: BLE001 - the output is being thrown away
                pass
            try:
                os.unlink(self.temp)
            except OSError:
                pass
            self._claim.release()
