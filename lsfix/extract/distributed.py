"""torchrun: the rank environment, joining and leaving the process group, and the collective
"did every rank succeed" check. gloo on CPU, NCCL on CUDA."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lsfix.errors import RuntimeFailure, UsageError

#: seconds ranks wait for each other at the end (a slow rank may still be extracting)
DIST_TIMEOUT_S = float(os.environ.get("LSFIX_DIST_TIMEOUT", 6 * 3600))


@dataclass
class DistInfo:
    """torchrun's environment."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistInfo:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise UsageError("RANK/WORLD_SIZE/LOCAL_RANK must be integers (set by torchrun)"
                             ) from None
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
        return cls(rank, world, local)


@contextlib.contextmanager
def process_group(dist: DistInfo, device: Any) -> Iterator[None]:
    """Join torchrun's process group for the run (nothing to do without torchrun)."""
    if dist.world == 1:
        yield
        return
    import torch
    import torch.distributed as tdist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        tdist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=DIST_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - rendezvous errors of many types
        raise RuntimeFailure(f"torchrun: cannot join the process group ({backend}): "
                             f"{str(exc).splitlines()[0]}") from None
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            tdist.destroy_process_group()


def all_ranks_ok(ok: bool, dist: DistInfo) -> bool:
    """Collective AND of ``ok`` over ranks (True without torchrun)."""
    if dist.world == 1:
        return ok
    import torch
    import torch.distributed as tdist

    t = torch.tensor([1 if ok else 0], dtype=torch.int64)
    if tdist.get_backend() == "nccl":
        t = t.cuda()
    tdist.all_reduce(t, op=tdist.ReduceOp.MIN)
    return bool(int(t.item()))
