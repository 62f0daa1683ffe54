"""Out-of-core tie blocks (lsfix.core.spill) vs in-memory evaluation: exactness and cost.

Builds the tie blocks of ``--n`` (confidence, correct) pairs from runs of ``--run-rows`` pairs
spilled to a temporary folder, merged into an on-disk block file, computes every metric from
that file a window at a time (``metrics_from_blocks`` on a ``BlockFile``), checks that every
metric in every convention equals ``lsfix.evaluate`` on the whole arrays bit for bit, and
prints the times and the peak traced memory (tracemalloc) of each path.

    python bench/bench_spill.py --n 10000000 --run-rows 1000000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import tracemalloc

import numpy as np

from lsfix.core import CONVENTIONS, evaluate, metrics_from_blocks
from lsfix.core.spill import SpilledBlocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--run-rows", type=int, default=1_000_000)
    ap.add_argument("--piece", type=int, default=262_144, help="pairs added at a time")
    ap.add_argument("--distinct", type=int, default=100_000,
                    help="distinct confidence values (ties), 0 = all distinct")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    kw = {"coverages": (0.5, 0.8, 0.95), "risks": (0.01, 0.05)}

    def piece(i: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng(i)
        m = min(args.piece, args.n - i * args.piece)
        c = (r.integers(0, args.distinct, m) / args.distinct if args.distinct
             else r.random(m))
        return c, r.random(m) < 0.8

    pieces = -(-args.n // args.piece)
    tracemalloc.start()
    t0 = time.perf_counter()
    with SpilledBlocks(run_rows=args.run_rows) as sb:
        for i in range(pieces):
            sb.add(*piece(i))
        blocks = sb.block_file()
        runs = len(sb.runs)
        n_blocks = blocks.length
        out_of_core = {cv: metrics_from_blocks(blocks, convention=cv, **kw)
                       for cv in CONVENTIONS}
    t_spill = time.perf_counter() - t0
    peak_spill = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    conf, corr = map(np.concatenate, zip(*(piece(i) for i in range(pieces)), strict=True))
    in_memory = {cv: evaluate(conf, corr, convention=cv, **kw) for cv in CONVENTIONS}
    t_mem = time.perf_counter() - t0
    peak_mem = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    same = all(repr(dataclasses.asdict(out_of_core[cv])) == repr(dataclasses.asdict(in_memory[cv]))
               for cv in CONVENTIONS)
    del rng
    print(f"n={args.n:,} distinct={args.distinct or 'all'} blocks={n_blocks:,} "
          f"runs={runs} run_rows={args.run_rows:,}")
    print(f"  out-of-core: {t_spill:6.2f} s  peak traced {peak_spill / 1e6:8.1f} MB")
    print(f"  in memory  : {t_mem:6.2f} s  peak traced {peak_mem / 1e6:8.1f} MB")
    print(f"  every metric in every convention bit-identical: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
