"""Shared pytest configuration: Hypothesis profiles.

``ci`` (the default) is quick and reproducible; ``HYPOTHESIS_PROFILE=thorough`` runs many
more examples for a deeper search."""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
