"""A long-lived lsfix for ``test_fuzz.py``: one command per stdin line, one result per line.

Each request is a JSON list of arguments; the reply is ``{"code", "stderr", "exc"}`` where
``exc`` is the formatted traceback of an exception that escaped the CLI (``null`` if none).
Running the CLI in-process here (CliRunner) costs milliseconds per example instead of a fresh
interpreter; running it in this separate process means a crash or a hang inside the HDF5
library on a corrupted file kills this server, not the test run, and is reported as such.
Warnings are errors, as in the test suite.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings


def main() -> None:
    import typer.testing

    from lsfix.cli import app

    out = sys.stdout
    for line in sys.stdin:
        args = json.loads(line)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = typer.testing.CliRunner().invoke(app, args, prog_name="lsfix")
        exc = None
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            exc = "".join(traceback.format_exception(res.exception))
        out.write(json.dumps({"code": res.exit_code, "stderr": res.stderr, "exc": exc}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
