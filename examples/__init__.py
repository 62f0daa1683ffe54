"""Worked examples for lsfix (importable from the repository root: ``examples.fashion_mnist``)."""
