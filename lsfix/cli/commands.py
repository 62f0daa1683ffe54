"""Import every command module so each registers on :data:`lsfix.cli.app.app`."""

from __future__ import annotations

from lsfix.cli import (  # noqa: F401
    audit_cmd,
    compare_cmd,
    curve_cmd,
    normalise_cmd,
    score_cmd,
)

try:  # written in parallel; present once the extract command lands
    from lsfix.cli import extract_cmd  # noqa: F401
except ImportError:  # pragma: no cover
    pass
