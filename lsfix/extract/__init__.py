"""``lsfix extract``: a model and a dataset in, an lsfix HDF5 file of logits out.

The only part of lsfix that imports torch (and torchvision/timm). Importing this package
imports nothing heavy; the submodules do:

* :mod:`lsfix.extract.models` - model specs: TorchScript, ``module:factory``, torchvision, timm
* :mod:`lsfix.extract.datasets` - image folders, array files, IDX files, torchvision datasets
* :mod:`lsfix.extract.preprocess` - resize/crop/normalise, from the command line or metadata
* :mod:`lsfix.extract.runner` - the loop: device, AMP, DataLoader, resume, torchrun shards
* :mod:`lsfix.extract.writer` - chunked in-place writing and shard merging (h5py only)

Example
-------
>>> from lsfix.extract.runner import ExtractOptions, run_extract  # doctest: +SKIP
>>> run_extract(ExtractOptions("net.ts", "images/", "out.h5"))  # doctest: +SKIP
"""

from __future__ import annotations
