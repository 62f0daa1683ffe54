"""Hardening tests: bad-input corpus, fuzzing, kills and interrupts, safe loading, scale."""
