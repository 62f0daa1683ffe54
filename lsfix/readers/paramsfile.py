"""Saved p-norm fits: the JSON documents ``lsfix normalise --save-params`` writes and
``--params`` reads back.

:func:`lsfix.readers.untrusted.read_json` reads any such document strictly (size, nesting,
``NaN``/``Infinity``; exit 3 naming the file); :func:`pnorm_fit_from_json` checks a saved
p-norm fit key by key and :func:`read_pnorm_fit` does both. A threshold's document
(``lsfix threshold --save-params``) is checked by
:func:`lsfix.evaluation.threshold.params_from_json`.
"""

from __future__ import annotations

import os
from typing import Any

from lsfix import streams as lio
from lsfix.core import PNormFit
from lsfix.errors import InputError
from lsfix.readers import untrusted

#: Most p values a grid (``--grid``, a saved fit's ``grid``) may hold, and the largest p
#: (|z|^p overflows float64 beyond it for ordinary logits; the paper's p lie in 0..10).
MAX_GRID_POINTS = 1_000
MAX_P = 1_000.0


def read_pnorm_fit(path: str | os.PathLike[str]) -> PNormFit:
    """The :class:`lsfix.core.PNormFit` saved in ``path`` (``normalise --save-params``)."""
    return pnorm_fit_from_json(untrusted.read_json(os.fspath(path)), os.fspath(path))


def pnorm_fit_from_json(doc: object, path: str) -> PNormFit:
    """A :class:`lsfix.core.PNormFit` from a ``--params`` document, every key checked for type
    and range first (exit 3 naming the file and the key)."""
    name = lio.display_name(path)
    d = untrusted.expect(doc, dict, file=name, key="the document", dataset=None)

    def number(key: str, value: object, lo: float, hi: float) -> None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not (lo <= float(value) <= hi):  # type: ignore[arg-type]
            raise InputError(f"key {key!r} must be a number in [{lo:g}, {hi:g}], got "
                             f"{str(value)[:40]}", file=name)

    if d.get("format") != PNormFit.FORMAT:
        raise InputError(f"not an lsfix p-norm fit (format {str(d.get('format'))[:40]!r})",
                         file=name)
    if "version" in d:
        untrusted.integer(d["version"], file=name, key="key 'version'", lo=0, hi=1 << 31,
                          dataset=None)
    if "p" not in d or "fallback_msp" not in d:
        raise InputError("missing key 'p' or 'fallback_msp'; not a p-norm fit", file=name)
    if d["p"] is not None:
        number("p", d["p"], 0.0, MAX_P)
    if not isinstance(d["fallback_msp"], bool):
        raise InputError(f"key 'fallback_msp' must be true or false, got "
                         f"{str(d['fallback_msp'])[:40]}", file=name)

    def aurc(key: str, value: object) -> None:  # null or NaN: undefined (older files: NaN)
        if value is not None and not (isinstance(value, float) and value != value):
            number(key, value, 0.0, 1.0)

    grid = untrusted.expect(d.get("grid", []), list, file=name, key="key 'grid'", dataset=None)
    if len(grid) > MAX_GRID_POINTS:
        raise InputError(f"key 'grid' has {len(grid)} entries; the limit is {MAX_GRID_POINTS}",
                         file=name)
    for i, g in enumerate(grid):
        untrusted.expect(g, dict, file=name, key=f"key 'grid'[{i}]", dataset=None)
        if "p" not in g or "aurc" not in g:
            raise InputError(f"key 'grid'[{i}] needs 'p' and 'aurc'", file=name)
        number(f"grid[{i}].p", g["p"], 0.0, MAX_P)
        aurc(f"grid[{i}].aurc", g["aurc"])
    aurc("msp_aurc", d.get("msp_aurc"))
    if "n_fit" in d:
        untrusted.integer(d["n_fit"], file=name, key="key 'n_fit'", lo=0, hi=1 << 62,
                          dataset=None)
    untrusted.expect(d.get("split", {}), dict, file=name, key="key 'split'", dataset=None)
    if "convention" in d:
        untrusted.expect(d["convention"], str, file=name, key="key 'convention'", dataset=None)
    if "method" in d:
        untrusted.expect(d["method"], str, file=name, key="key 'method'", dataset=None)
        if len(d["method"]) > 40:
            raise InputError("key 'method' is not a p-norm method", file=name)
    if "centred" in d and not isinstance(d["centred"], bool):
        raise InputError(f"key 'centred' must be true or false, got {str(d['centred'])[:40]}",
                         file=name)
    d = dict(d)  # strict JSON writes an undefined AURC as null; the fit holds NaN
    if d.get("msp_aurc", 0.0) is None:
        d.pop("msp_aurc")
    fixed: list[Any] = [{**g, "aurc": float("nan") if g["aurc"] is None else g["aurc"]}
                        for g in grid]
    d["grid"] = fixed
    try:
        return PNormFit.from_dict(d)
    except InputError as exc:
        raise InputError(str(exc), file=name) from None
    except (ArithmeticError, AttributeError, TypeError, ValueError) as exc:
        raise InputError(f"malformed p-norm fit ({exc})", file=name) from None
