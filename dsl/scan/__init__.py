"""``policy scan``: decide a whole catalogue (docs/scan.md).

    from dsl.scan import scan, Workers
    result = scan(policies, sources, ["catalogue.parquet"], "decisions.parquet", at="2021-10-20")

``sources`` are the policy files' texts (the worker processes load the set from them and
check its ``policy_hash``); ``dsl.api.scan_paths`` loads both from paths.

``dsl.scan.spark(dataframe, policies, …)`` decides a Spark DataFrame's rows (pyspark is
imported only then; the module is ``dsl.scan.spark_engine``, so that the name ``spark``
stays the function).

The names are imported when first used: ``dsl.scan.records``, which ``policy eval`` reads
its input with, does not bring DuckDB and pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import Workers, load_sources
    from .report import Tally, render_table
    from .run import BATCH_SIZE, ScanResult, scan
    from .spark_engine import spark

__all__ = ["BATCH_SIZE", "ScanResult", "Tally", "Workers", "load_sources", "render_table", "scan", "spark"]

_HOME = {"Workers": "pool", "load_sources": "pool", "Tally": "report",
         "render_table": "report", "BATCH_SIZE": "run", "ScanResult": "run", "scan": "run", "spark": "spark_engine"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
