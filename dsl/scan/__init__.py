"""``policy scan``: decide a whole catalogue (docs/scan.md)."""
