"""Reading any input: picks the reader for a path and returns a :class:`Predictions`.

HDF5 inputs go to :mod:`lsfix.readers.logitsfile` (lsfix logits files) or :mod:`lsfix.readers.scoresfile`
(scores files, by their ``lsfix_schema`` attribute); anything else goes to
:mod:`lsfix.readers.foreign` (``.npy``, ``.npz``, ``.pt``, ``.csv``/``.tsv``). This is the only module
that knows every reader, so the readers never import one another.
"""

from __future__ import annotations

from lsfix.readers import foreign

from lsfix.readers import logitsfile as schema

from lsfix.readers import scoresfile as scorefile
from lsfix.errors import InputError
from lsfix.readers.predictions import LOGITS, Predictions, ignoring

#: Readers of the lsfix HDF5 kinds other than the logits file.
HDF5_KINDS = {scorefile.SCHEMA_NAME: scorefile.read_scores_file}


def read_predictions(
    path: str,
    *,
    allow_incomplete: bool = False,
    need_labels: bool = False,
    need_logits: bool = False,
    ignore_index: int | None = None,
) -> Predictions:
    """Open, read and validate an lsfix file or a foreign input (``-`` = stdin).

    Parameters
    ----------
    path : str
        File path, or ``-`` for stdin (read into memory).
    allow_incomplete : bool
        Accept an ``extract`` output not yet marked complete.
    need_labels, need_logits : bool
        Raise :class:`InputError` when ``/labels`` (or ``/logits``) is missing.
    ignore_index : int, optional
        Label value of rows never evaluated (``--ignore-index``), for inputs that do not say
        (an HDF5 ``ignore_index`` attribute that disagrees is an error).

    Returns
    -------
    Predictions

    Raises
    ------
    InputError
        For anything wrong with the data; the message names ``file:/dataset`` and shapes.
    """
    src, name, head, is_hdf5 = schema.open_source(path)
    with ignoring(ignore_index):
        if is_hdf5:
            pred = schema.read_hdf5(src, name, allow_incomplete=allow_incomplete,
                                    kinds=HDF5_KINDS)
        else:
            pred = foreign.read_foreign(src, name, head)
    if need_labels:
        pred.require_labels("this command")
    if need_logits:
        require_logits(pred)
    return pred


__all__ = ["HDF5_KINDS", "read_predictions"]


def require_logits(pred: Predictions) -> None:
    """Raise :class:`InputError` in the input's own vocabulary when ``pred`` has no logits."""
    if pred.logits is not None:
        return
    if pred.kind == scorefile.SCHEMA_NAME:
        raise InputError("is a scores file (no /logits); this command needs the logits "
                         "file it was computed from (pass that, and this with --with)",
                         file=pred.name)
    if pred.foreign_format:  # a table of confidences: no "datasets" in its vocabulary
        raise InputError(f"no logits in {pred.name} (a table of confidences); this "
                         "command needs logits")
    raise InputError(f"no {LOGITS} dataset; this command needs logits", file=pred.name)
