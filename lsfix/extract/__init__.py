"""``lsfix extract``: a model and a dataset in, an lsfix HDF5 file of logits out.

The only part of lsfix that imports torch (and torchvision/timm). Importing this package
imports nothing heavy; the submodules do:

* :mod:`lsfix.extract.models` - model specs: TorchScript, ``module:factory``, torchvision, timm
* :mod:`lsfix.extract.datasets` - image folders, array files, IDX files, torchvision datasets
* :mod:`lsfix.extract.preprocess` - resize/crop/normalise, from the command line or metadata
* :mod:`lsfix.extract.runner` - the command end to end: plan, load, record, run, join shards
* :mod:`lsfix.extract.options` - what was asked (:class:`ExtractOptions`) and what was done
* :mod:`lsfix.extract.device` - torch, device choice, IEEE float32 under ``--amp off``, workers
* :mod:`lsfix.extract.distributed` - torchrun: ranks, process group, collective checks
* :mod:`lsfix.extract.output_plan` - new file, resume, done, or this rank's shard
* :mod:`lsfix.extract.loop` - the inference loop: prefetch, autocast, label checks, writing
* :mod:`lsfix.extract.model_output` - the logits in what the model returns (``--output-key``)
* :mod:`lsfix.extract.writer` - chunked in-place writing and shard merging (h5py only)

Example
-------
>>> from lsfix.extract.runner import ExtractOptions, run_extract  # doctest: +SKIP
>>> run_extract(ExtractOptions("net.ts", "images/", "out.h5"))  # doctest: +SKIP
"""

from __future__ import annotations
