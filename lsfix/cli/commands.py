"""Import every command module so each registers on :data:`lsfix.cli.app.app`.

The order here is the order ``lsfix --help`` lists the commands: the pipeline's order.
"""

from __future__ import annotations

import importlib

COMMAND_MODULES = ("extract_cmd", "score_cmd", "normalise_cmd", "curve_cmd", "compare_cmd",
                   "audit_cmd", "threshold_cmd")

for _name in COMMAND_MODULES:
    importlib.import_module(f"lsfix.cli.{_name}")
