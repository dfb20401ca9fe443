"""The attack made permanent (issue 10): hostile policy text, hostile listings, and files
that must never be lost. ``HYPOTHESIS_PROFILE=thorough`` searches much longer."""
