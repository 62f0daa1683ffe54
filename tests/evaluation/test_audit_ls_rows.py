"""The dense audit's label-smoothing estimate (:func:`lsfix.evaluation.audit.audit`) uses the
evaluated pixels only: ignored pixels (label = ignore index) never enter α̂ (issue 19: counting
them moved α̂ from 0.3633 to 0.3653 and no test noticed)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from lsfix.core.ceiling import estimate_label_smoothing
from lsfix.evaluation.audit import audit
from lsfix.readers.entry import read
from lsfix.readers.logitsfile import set_root_attrs

N, K, H, W = 8, 5, 12, 12


def _dense(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluated pixels: gaps near a label-smoothing ceiling; ignored pixels (about 40 %):
    far larger gaps on class 0, so counting them would move the median gap."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, K, (N, H, W))
    ignored = rng.random((N, H, W)) < 0.4
    z = rng.normal(0.0, 0.3, (N, K, H, W))
    yy = np.where(ignored, 0, y)
    bump = np.where(ignored, 14.0, 3.0 + rng.normal(0.0, 0.2, (N, H, W)))
    np.put_along_axis(z, yy[:, None], np.take_along_axis(z, yy[:, None], 1) + bump[:, None],
                      axis=1)
    labels = np.where(ignored, 255, y).astype(np.int64)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z.astype(np.float32), chunks=(1, K, H, W))
        f.create_dataset("labels", data=labels).attrs["ignore_index"] = np.int64(255)
    rows = z.astype(np.float32).astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, K)
    flat = labels.reshape(-1)
    return rows, flat, flat != 255


def test_dense_audit_label_smoothing_counts_evaluated_pixels_only(tmp_path: Path) -> None:
    rows, y, keep = _dense(tmp_path / "d.h5")
    pred = read(str(tmp_path / "d.h5"))
    res = audit(pred, n_boot=20, seed=0)
    ls = res.label_smoothing
    correct = np.argmax(rows, axis=1) == np.where(keep, y, -1)
    want = estimate_label_smoothing(rows[keep], correct=correct[keep], n_boot=20, seed=0)
    assert ls.n == int((correct & keep).sum()) == want.n
    assert ls.ceiling == want.ceiling and ls.alpha == want.alpha
    # the same estimate with the ignored pixels in: far from it (the test can fail)
    every = estimate_label_smoothing(rows, correct=np.argmax(rows, axis=1) == np.where(
        keep, y, 0), n_boot=20, seed=0)
    assert every.n > want.n
    assert abs(every.ceiling - want.ceiling) > 0.3, (every.ceiling, want.ceiling)
    assert (every.verdict, want.verdict) == ("no_ceiling", "ceiling")
    pred.close()
