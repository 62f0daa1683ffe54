"""Cut the shipped Fashion-MNIST subset (``tests/data/fmnist_subset/``) from the full IDX files.

Usage (from the repository root; Debian: ``apt-get install dataset-fashion-mnist``)::

    python -m tests.data.make_fmnist_subset /usr/share/datasets/fashion-mnist

Writes the first ``TRAIN_ROWS`` rows of the training split and the first ``TEST_ROWS`` rows of
the official t10k test split as gzipped IDX files under the original names, so the folder is a
drop-in ``--root`` for ``lsfix extract torchvision:FashionMNIST`` and for
``examples.fashion_mnist.train --data-dir``. gzip headers carry no timestamp and no file name:
the same input gives the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

TRAIN_ROWS = 4000
TEST_ROWS = 1000
OUT = Path(__file__).resolve().parent / "fmnist_subset"
FILES = {  # name -> rows kept
    "train-images-idx3-ubyte.gz": TRAIN_ROWS,
    "train-labels-idx1-ubyte.gz": TRAIN_ROWS,
    "t10k-images-idx3-ubyte.gz": TEST_ROWS,
    "t10k-labels-idx1-ubyte.gz": TEST_ROWS,
}


def cut(raw: bytes, rows: int) -> bytes:
    """The IDX file ``raw`` limited to its first ``rows`` items (header rewritten)."""
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError("not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = list(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))
    if dims[0] < rows:
        raise ValueError(f"only {dims[0]} rows")
    item = 1
    for d in dims[1:]:
        item *= d
    head = 4 + 4 * ndim
    dims[0] = rows
    return raw[:4] + struct.pack(f">{ndim}I", *dims) + raw[head:head + rows * item]


def main(src: str) -> None:
    OUT.mkdir(exist_ok=True)
    for name, rows in FILES.items():
        data = (Path(src) / name).read_bytes()
        print(f"{name}: source sha256 {hashlib.sha256(data).hexdigest()}")
        body = cut(gzip.decompress(data), rows)
        with open(OUT / name, "wb") as raw_fh, gzip.GzipFile(
                filename="", mode="wb", fileobj=raw_fh, mtime=0, compresslevel=9) as fh:
            fh.write(body)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
