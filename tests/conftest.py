"""Shared pytest configuration: Hypothesis profiles, and a cache directory of the run's own.

``ci`` (the default) is quick and reproducible; ``HYPOTHESIS_PROFILE=thorough`` runs many
more examples for a deeper search.

The run's parses and Lark's tables go to a temporary ``XDG_CACHE_HOME`` (its processes
inherit it), not the user's cache: the tests parse thousands of throwaway texts, which the
parse cache (``dsl.syntax.cache``) would keep."""

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_CACHE = tempfile.mkdtemp(prefix="policy-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
