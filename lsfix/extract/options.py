"""What ``lsfix extract`` is asked to do and what it did: :class:`ExtractOptions`, their
checks, and :class:`ExtractResult`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsfix.errors import UsageError

AMP_MODES = ("off", "bf16", "fp16")
OUT_DTYPES = ("float32", "float16", "float64")


@dataclass
class ExtractOptions:
    """Everything ``lsfix extract`` takes; see ``lsfix extract --help`` for each option."""

    model: str
    dataset: str
    output: str
    weights: str | None = None
    trust_pickle: bool = False
    root: str | None = None
    split: str | None = None
    download: bool = False
    images_key: str | None = None
    labels_key: str | None = None
    layout: str | None = None
    limit: int | None = None
    resize: tuple[int, ...] | None = None
    crop: tuple[int, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    channels: int | None = None
    class_names: str | None = None
    labels: bool = True
    ignore_index: int | None = None
    output_key: str | None = None
    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    amp: str = "off"
    dtype: str = "float32"
    channels_last: bool | None = None
    resume: bool = False
    overwrite: bool = False
    merge: bool = True
    keep_shards: bool = False
    sync_every: float = 1.0
    quiet: bool = False
    progress: bool | None = None
    history_entry: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warn: Callable[[str], None] = field(default=lambda m: None, repr=False)
    note: Callable[[str], None] = field(default=lambda m: None, repr=False)


@dataclass
class ExtractResult:
    """What a run did."""

    output: str
    rows: int
    rows_this_run: int = 0
    shape: tuple[int, ...] | None = None
    wall_time_s: float = 0.0
    loop_time_s: float = 0.0
    device: str = "cpu"
    already_complete: bool = False
    rank: int = 0
    world: int = 1
    merged: bool = False
    shards: list[str] = field(default_factory=list)
    #: seconds of the loop spent waiting for data, running the model (to the host), writing
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Rows per second of the inference loop (this run's rows only)."""
        return self.rows_this_run / self.loop_time_s if self.loop_time_s > 0 else 0.0


def check_options(o: ExtractOptions) -> None:
    if o.amp not in AMP_MODES:
        raise UsageError(f"--amp {o.amp!r}: choose {', '.join(AMP_MODES)}")
    if o.dtype not in OUT_DTYPES:
        raise UsageError(f"--dtype {o.dtype!r}: choose {', '.join(OUT_DTYPES)}")
    if o.batch_size <= 0:
        raise UsageError(f"--batch-size {o.batch_size}: must be positive")
    if o.workers is not None and o.workers < 0:
        raise UsageError(f"--workers {o.workers}: must be 0 or more")
    if o.sync_every < 0:
        raise UsageError(f"--sync-every {o.sync_every}: must be 0 or more")
    if o.resume and o.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; give one")
    if o.resume and o.output == "-":
        raise UsageError("--resume needs -o FILE (stdout cannot be resumed)")
