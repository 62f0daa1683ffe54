"""Evaluating what was read: one planner (:func:`lsfix.evaluate`) that picks in-memory, bounded (out-of-core), grouped or Dask evaluation, the p-fitting policy, and the audit."""
