"""Record reference vectors with the peers' own code (run once, by hand; not a test).

The peers' code is NOT part of lsfix. This script imports it from a scratch folder outside the
repository (``PEERS``), where each peer's metric module was taken unchanged from its
repository at the commit written into the output; see ``tests/peers/README.md`` for how that
folder is made. It writes one JSON file per peer under ``tests/peers/data/``: the inputs
(confidence, correct) of every case and the peer's outputs, exactly as the peer returned them
(fd-shifts' x1000 display scale included), plus the peer's commit and the command line.

Usage (with the peers' dependencies in a separate environment, never lsfix's)::

    PEERS=/work/peer_scratch /work/peervenv/bin/python tests/peers/record_peers.py
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEERS = Path(os.environ["PEERS"])
COMMAND = "PEERS=/work/peer_scratch /work/peervenv/bin/python tests/peers/record_peers.py"

SOURCES = {
    "fd-shifts": {
        "repository": "https://github.com/IML-DKFZ/fd-shifts",
        "commit": "c4467aec134e99691359da209f811d91283fc1e3",
        "files": ["fd_shifts/analysis/metrics.py", "fd_shifts/analysis/rc_stats.py",
                  "fd_shifts/analysis/rc_stats_utils.py"],
        "called": "StatsCache(confids, correct, n_bins=20).aurc / .eaurc / .augrc / "
                  ".aurc_optimal; metrics.fpr_at_95_tpr(cache); metrics.failauc(cache)",
    },
    "torch-uncertainty": {
        "repository": "https://github.com/ENSTA-U2IS-AI/torch-uncertainty",
        "commit": "0d0df2b2e553139edeb2cdd1b99a88efb68f1945",
        "version": "0.8.0",
        "files": ["src/torch_uncertainty/metrics/classification/risk_coverage.py"],
        "called": "AURC(), AUGRC(), RiskAtxCov(0.8), CovAtxRisk(0.05): update(probs, targets) "
                  "with probs[:, 0] = 0.5 + c/2 (same ranking as c), target 0 = correct",
    },
    "cattelan-silva": {
        "repository": "https://github.com/lfpc/FixSelectiveClassification",
        "commit": "edc274e52323a204547652413db174acefef8e22",
        "files": ["utils/metrics.py", "utils/measures.py"],
        "called": "AURC, E_AURC, N_AURC, AUROC (confidence, risk = 1 - correct), float64 tensors",
    },
    "paper-official": {
        "repository": "https://github.com/ENSTA-U2IS-AI/Label-smoothing-Selective-classification-Code",
        "commit": "1437414544ea15d03ed62dc880751e554203925d",
        "files": ["torch_uncertainty_ls/utils.py (risk_coverage_curve only)",
                  "notebooks/imdb_aurc.ipynb (torch.trapz(risk, coverage))"],
        "called": "risk, cov, _ = risk_coverage_curve(correct, confidence); "
                  "torch.trapz(risk, cov) (the notebooks print it x100 as %AURC)",
    },
}


def _cases() -> list[dict]:
    rng = np.random.default_rng(20261201)
    out = [
        dict(name="A", confidence=[.9, .8, .7, .6, .8], correct=[1, 1, 0, 0, 1]),
        dict(name="B", confidence=[.9, .8, .2, .1], correct=[1, 1, 0, 0]),
        dict(name="C-tie", confidence=[.5, .5, .5, .2], correct=[1, 0, 1, 0]),
        dict(name="D-all-wrong", confidence=[.3, .2, .1], correct=[0, 0, 0]),
        dict(name="issue-naurc", confidence=[.9, .8, .7, .6], correct=[1, 0, 1, 0]),
        dict(name="all-correct", confidence=[.9, .7, .4, .3, .2], correct=[1, 1, 1, 1, 1]),
    ]
    for n, q in [(2, .5), (3, .34), (5, .4), (10, .3), (20, .15), (37, .2), (100, .1),
                 (250, .05), (1000, .08), (1000, .5), (2000, .02)]:
        while True:
            c = np.round(rng.uniform(0.001, 1.0, n), 9)
            if np.unique(c).size == n:
                break
        p_wrong = np.clip(2 * q * (1.0 - c) + 0.02, 0, 1)
        y = (rng.random(n) >= p_wrong).astype(int)
        if y.all() or not y.any():
            y[0] = 1 - y[0]
        out.append(dict(name=f"distinct-n{n}-q{q}", confidence=c.tolist(), correct=y.tolist()))
    for n, dec in [(30, 1), (200, 2), (1000, 2)]:
        c = np.round(rng.uniform(0.0, 1.0, n), dec)
        y = (rng.random(n) >= 0.3 * (1.0 - c)).astype(int)
        out.append(dict(name=f"ties-n{n}-round{dec}", confidence=c.tolist(), correct=y.tolist()))
    # FPR@95TPR where scikit-learn's collinear-point thinning matters: 40 correct samples with
    # distinct high confidence, then 10 blocks of (1 correct, 1 wrong) tied, then 10 wrong.
    c = [1.0 - i / 100 for i in range(40)]
    y = [1] * 40
    for b in range(10):
        c += [0.5 - b / 100] * 2
        y += [1, 0]
    c += [0.1 - i / 1000 for i in range(10)]
    y += [0] * 10
    out.append(dict(name="fpr-collinear", confidence=c, correct=y))
    # FPR@95TPR where 0.9495 and 0.95 differ: 2000 correct, the first wrong sample after 1899
    n = 2010
    c = [1.0 - i / 4096 for i in range(n)]
    y = [1] * 1899 + [0] + [1] * 101 + [0] * 9
    out.append(dict(name="fpr-threshold-0.9495", confidence=c, correct=y))
    for case in out:
        case["distinct"] = len(set(case["confidence"])) == len(case["confidence"])
    return out


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _fd_shifts(case: dict) -> dict:
    from fd_shifts.analysis import metrics as M

    conf = np.asarray(case["confidence"], dtype=np.float64)
    corr = np.asarray(case["correct"], dtype=np.int64)
    cache = M.StatsCache(conf, corr, 20)
    return {"aurc": _num(cache.aurc), "eaurc": _num(cache.eaurc), "augrc": _num(cache.augrc),
            "aurc_optimal": _num(cache.aurc_optimal),
            "fpr_at_95tpr": _num(M.fpr_at_95_tpr(cache)), "failauc": _num(M.failauc(cache))}


def _torch_uncertainty(case: dict) -> dict:
    import torch
    from torch_uncertainty_rc import risk_coverage as T

    c = torch.tensor(case["confidence"], dtype=torch.float64)
    p0 = 0.5 + c / 2  # MSP of a two-class row; ranks exactly like c
    probs = torch.stack([p0, 1 - p0], dim=-1)
    targets = 1 - torch.tensor(case["correct"], dtype=torch.long)  # correct -> class 0
    out = {}
    for name, metric in [("aurc", T.AURC()), ("augrc", T.AUGRC()),
                         ("risk_at_80cov", T.RiskAtxCov(0.8)),
                         ("cov_at_5risk", T.CovAtxRisk(0.05))]:
        metric.update(probs, targets)
        out[name] = _num(metric.compute().reshape(-1)[0])
    return out


def _cattelan_silva(case: dict) -> dict:
    import torch
    from utils import metrics as C

    conf = torch.tensor(case["confidence"], dtype=torch.float64)
    risk = 1.0 - torch.tensor(case["correct"], dtype=torch.float64)
    out = {"aurc": _num(C.AURC(conf, risk)), "e_aurc": _num(C.E_AURC(conf, risk)),
           "n_aurc": _num(C.N_AURC(conf, risk))}
    try:
        out["auroc"] = _num(C.AUROC(conf, risk))
    except ValueError as exc:  # one class only
        out["auroc"] = None
        out["auroc_error"] = str(exc)
    return out


def _paper_official(case: dict) -> dict:
    import torch
    from paper_official.rc import risk_coverage_curve

    conf = torch.tensor(case["confidence"], dtype=torch.float64)
    corr = torch.tensor(case["correct"], dtype=torch.bool)
    risk, cov, _ = risk_coverage_curve(corr, conf)
    return {"aurc": _num(torch.trapz(risk, cov)), "dtype": str(risk.dtype)}


RUNNERS = {"fd-shifts": _fd_shifts, "torch-uncertainty": _torch_uncertainty,
           "cattelan-silva": _cattelan_silva, "paper-official": _paper_official}
ORDER_DEPENDENT = {"torch-uncertainty", "cattelan-silva", "paper-official"}


def main() -> None:
    sys.path[:0] = [str(PEERS), str(PEERS / "cattelan_silva")]
    import warnings

    import sklearn
    import torch

    warnings.simplefilter("ignore")
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "scikit-learn": sklearn.__version__, "torch": torch.__version__}
    try:
        import torchmetrics
        env["torchmetrics"] = torchmetrics.__version__
    except ImportError:
        pass
    for peer, run in RUNNERS.items():
        rows = []
        for case in _cases():
            if peer in ORDER_DEPENDENT and not case["distinct"]:
                continue  # the peer breaks ties by sort order: not a reproducible number
            rows.append({**case, "outputs": run(case)})
        doc = {"peer": peer, **SOURCES[peer], "environment": env, "command": COMMAND,
               "cases": rows}
        path = HERE / "data" / f"{peer}.json"
        head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, indent=1)
        body = ",\n".join(json.dumps(row, separators=(",", ":")) for row in rows)
        path.write_text(head[:-2] + ',\n "cases": [\n' + body + "\n ]\n}\n")
        print(f"{path}: {len(rows)} cases")


if __name__ == "__main__":
    main()
