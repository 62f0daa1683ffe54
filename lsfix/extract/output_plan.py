"""Where this run writes and how: a new file, a resumed one, a finished one left alone, or
this rank's shard under torchrun — and the refusals that keep an existing file safe."""

from __future__ import annotations

from pathlib import Path

from lsfix.errors import RuntimeFailure, UsageError
from lsfix.extract.distributed import DistInfo
from lsfix.extract.options import ExtractOptions
from lsfix.extract.writer import FileState, inspect_output, shard_path


def plan_output(opts: ExtractOptions, dist: DistInfo) -> tuple[str, str, FileState | None]:
    """Return (this rank's target path, mode 'new'|'resume'|'done'|'complete', final state)."""
    out = opts.output
    if out == "-":
        return out, "new", None
    if not Path(out).parent.is_dir() and str(Path(out).parent) not in ("", "."):
        raise RuntimeFailure(f"{out}: folder {str(Path(out).parent)!r} does not exist")
    final = inspect_output(out, strict=opts.resume)  # --resume: local-only, sound attrs
    if final is not None:
        extract_file = final.is_lsfix and final.job is not None
        if opts.resume and final.is_lsfix and final.complete:
            return out, "complete", final
        if not opts.resume and not opts.overwrite:
            if extract_file and not final.complete:
                total = f" of {final.rows_total}" if final.rows_total is not None else ""
                raise UsageError(
                    f"{out}: an interrupted extract is there ({final.rows_done}{total} rows); "
                    "pass --resume to continue it or --overwrite to start over")
            raise UsageError(f"{out}: exists; pass --overwrite to replace it")
        if opts.resume and dist.world == 1 and not extract_file:
            raise UsageError(f"{out}: is not an lsfix extract output; cannot resume it "
                             "(use --overwrite to replace it)")
    if dist.world == 1:
        if opts.resume and final is not None:
            return out, "resume", final
        return out, "new", final
    target = str(shard_path(out, dist.rank, dist.world))
    st = inspect_output(target, strict=opts.resume)
    if st is None:
        return target, "new", final
    if not opts.resume and not opts.overwrite:
        raise UsageError(f"{target}: a shard of an earlier run is there; pass --resume to "
                         "continue it or --overwrite to start over")
    if opts.resume:
        if not (st.is_lsfix and st.job is not None):
            raise UsageError(f"{target}: is not an lsfix extract shard; cannot resume it")
        return target, ("done" if st.complete else "resume"), final
    return target, "new", final
