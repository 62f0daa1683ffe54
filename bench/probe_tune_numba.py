"""Probe (not lsfix code): could a compiled kernel make p-tuning meet <= 3x msp, bit-identically?

Run:  python bench/probe_tune_numba.py [--k 1000]      (needs numba; prints and exits otherwise)

lsfix's ``Σ_k a_k^p`` for p = 2..9 come from ``np.einsum("ij,ij->i", a^(p//2), a^(p-p//2))``,
whose bits are set by numpy's ``sum_of_products_contig_contig_outstride0_two`` loop. In a numpy
built for the x86-64-v2 baseline (SSE, 2 float64 lanes, no FMA) that loop adds, per lane, the
products of elements ``8t+6+l, 8t+4+l, 8t+2+l, 8t+l`` (in that order) to a running sum, then
the leftover pairs, then adds the two lanes. This probe writes that order out in a numba kernel
that also computes ``a = |x| / max|x|`` and the powers, checks it against ``einsum`` bit for
bit, and times both on one cache-sized piece. It is a measurement for bench/README.md, not a
code path: the order is a detail of one numpy build (an FMA or AVX2 baseline, or aarch64,
changes it), so a kernel like this would have to check itself against einsum before use.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tune import per_call  # noqa: E402  (one timing loop for both scripts)

PAIRS = {2: ("a", "a"), 3: ("a", "a2"), 4: ("a2", "a2"), 5: ("a2", "a3"), 6: ("a3", "a3"),
         7: ("a3", "a4"), 8: ("a4", "a4"), 9: ("a4", "a5")}


def _source() -> str:
    lines = ["def powsums(x, rinv, out):", "    r, k = x.shape", "    for row in range(r):",
             "        s = rinv[row]"]
    lines += [f"        c{p}0 = 0.0; c{p}1 = 0.0" for p in PAIRS]

    def body(ind: str, e: str, lane: int) -> list[str]:
        out = [f"{ind}a = abs(x[row, {e}]) * s",
               f"{ind}a2 = a * a; a3 = a * a2; a4 = a2 * a2; a5 = a2 * a3"]
        out += [f"{ind}c{p}{lane} = {u} * {v} + c{p}{lane}" for p, (u, v) in PAIRS.items()]
        return out

    lines += ["        i = 0", "        while k - i >= 8:"]
    for j in (3, 2, 1, 0):
        for lane in (0, 1):
            lines += body("            ", f"i + {2 * j + lane}", lane)
    lines += ["            i += 8", "        while i < k:"]
    lines += body("            ", "i", 0)
    lines += ["            if i + 1 < k:"]
    lines += body("                ", "i + 1", 1)
    lines += ["            i += 2"]
    lines += [f"        out[{p - 2}, row] = 0.0 + (c{p}0 + c{p}1)" for p in PAIRS]
    return "\n".join(lines)


def numpy_sums(x: np.ndarray, rinv: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    a *= rinv[:, None]
    pw = {1: a}
    for q in range(2, 6):
        pw[q] = pw[q // 2] * pw[q - q // 2]
    return np.array([np.einsum("ij,ij->i", pw[p // 2], pw[p - p // 2]) for p in PAIRS])


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--k", type=int, default=1000)
    args = ap.parse_args()
    try:
        import numba
    except ImportError:
        print("numba is not installed: nothing to probe")
        return 0
    from numpy._core._multiarray_umath import __cpu_baseline__  # type: ignore[attr-defined]

    ns: dict[str, object] = {}
    exec(_source(), ns)  # noqa: S102 (generated, fixed source)
    kernel = numba.njit(nogil=True, boundscheck=False)(ns["powsums"])
    print(f"numpy {np.__version__} (baseline {__cpu_baseline__}), numba {numba.__version__}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rng = np.random.default_rng(0)
    same = True
    for k in (1, 2, 3, 7, 8, 9, 15, 16, 17, 999, 1000, 1001):
        x = rng.standard_normal((7, k)) * rng.uniform(0.1, 50, (7, 1))
        rinv = 1.0 / np.abs(x).max(axis=1)
        got = np.empty((8, 7))
        kernel(x, rinv, got)
        same &= bool(np.array_equal(got, numpy_sums(x, rinv)))
    print(f"fused kernel == einsum path, bit for bit (K = 1..17, 999..1001): {same}")
    r = max(1, (1 << 16) // args.k)
    x = rng.standard_normal((r, args.k))
    rinv = 1.0 / np.abs(x).max(axis=1)
    out = np.empty((8, r))
    reps = max(3, (1 << 24) // x.size)
    pw = np.empty((5, r, args.k))  # lsfix.core.tunepass's way: buffers reused, one einsum
    s_pl, s_row, s_col = pw.strides
    v1 = as_strided(pw[0], (4, 2, r, args.k), (s_pl, 0, s_row, s_col))
    v2 = as_strided(pw[0], (4, 2, r, args.k), (s_pl, s_pl, s_row, s_col))
    sums = np.empty((4, 2, r))

    def numpy_pass() -> None:
        np.abs(x, out=pw[0])
        pw[0] *= rinv[:, None]
        for q in range(2, 6):
            np.multiply(pw[q // 2 - 1], pw[q - q // 2 - 1], out=pw[q - 1])
        np.einsum("abij,abij->abi", v1, v2, out=sums)

    numpy_pass()
    assert np.array_equal(sums.reshape(8, r), numpy_sums(x, rinv))
    kernel(x, rinv, out)
    same_piece = np.array_equal(out, sums.reshape(8, r))
    print(f"fused kernel == lsfix's einsum pass on the timed piece: {same_piece}")
    for name, fn in (("numpy: |x|, scale, 4 products, 8-sum einsum", numpy_pass),
                     ("numba: the same, fused, one pass", lambda: kernel(x, rinv, out))):
        best = per_call(fn, reps)
        print(f"  {name:46s} {best * 1e9 / x.size:6.3f} ns per logit ({r} x {args.k} piece)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
