"""``policy scan``: decide a whole catalogue (docs/scan.md).

    from dsl.scan import scan, Workers
    result = scan(policies, sources, ["catalogue.parquet"], "decisions.parquet", at="2021-10-20")

``sources`` are the policy files' texts (the worker processes load the set from them and
check its ``policy_hash``); ``dsl.api.scan_paths`` loads both from paths.
"""

from .pool import Workers, load_sources
from .report import Tally, render_table
from .run import BATCH_SIZE, ScanResult, scan

__all__ = ["BATCH_SIZE", "ScanResult", "Tally", "Workers", "load_sources", "render_table", "scan"]
