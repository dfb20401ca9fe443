"""Writing a scan's output: to a temporary file beside the final name, renamed over it at
the end (``dsl.atomic.replace_with``: synced, the old file's mode kept), so that a reader, a failed scan or a full disk
never leaves a half-written file under the final name. Parquet is written by pyarrow's
Parquet writer (``penalty`` a struct), CSV by pyarrow's CSV writer, JSON lines as text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..atomic import Temporary, remove_abandoned, replace_with
from ..checking.loader import UsageError
from .schema import arrow_schema

__all__ = ["Writer", "unwritable"]


def unwritable(option: str, path: object, e: OSError) -> UsageError:
    """The error of an output (``--out``, ``--report``) that cannot be written."""
    return UsageError(f"{option} '{path}': cannot be written: {e.strerror or e}")


class Writer:
    """The output of one scan, open under a temporary name until ``commit``."""

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
        try:
            if out_format == "jsonl":
                self._text = open(self.temp, "w", encoding="utf-8", newline="")
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
        if self._text is not None:
            assert isinstance(piece, str)
            self._text.write(piece)
        else:
            assert isinstance(piece, pa.RecordBatch)
            if self.out_format == "parquet":
                self._arrow.write_batch(piece)
            else:
                self._arrow.write(piece)

    def _close(self) -> None:
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
        """Close and remove the temporary file: the final name is left as it was."""
        try:
            self._close()
        except Exception:  # noqa: BLE001 - the output is being thrown away
            pass
        try:
            os.unlink(self.temp)
        except OSError:
            pass
        self._claim.release()
