"""``lsfix extract`` (model + dataset -> lsfix HDF5) and ``lsfix merge`` (torchrun shards -> one).

torch is imported inside the command bodies only, so ``lsfix --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lsfix.cli.app import app, err, handle_errors, note, warn
from lsfix.cli.options import OverwriteOpt, QuietOpt
from lsfix.errors import ExitCode

EXTRACT_HELP = """Run a model over a dataset and save its logits as an lsfix HDF5 file.

MODEL is a TorchScript FILE, package.module:factory (literal arguments allowed:
pkg.mod:Net(num_classes=10)) with --weights FILE, torchvision:NAME or timm:NAME.

DATASET is an image FOLDER (ImageFolder layout, or a flat folder without labels),
FILE.npy/.npz/.h5 (images and labels), idx:PREFIX (raw MNIST-style IDX files), or
torchvision:FashionMNIST|MNIST|KMNIST|CIFAR10|CIFAR100|ImageNet with --root.

Rows are appended as they are computed; an interrupted run keeps what it wrote and
--resume continues it. Under torchrun each rank writes a shard and rank 0 joins them.

On a GPU: --device cuda --amp bf16; a torchvision model with its weights:
torchvision:resnet50 --weights IMAGENET1K_V2 (docs/extract.md has more).

Examples:

\b
  lsfix extract model.ts photos/ -o photos.h5 --resize 28 --crop 24 \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
  lsfix extract model.ts images.npy -o images.h5 --batch-size 256
  torchrun --nproc-per-node 2 -m lsfix extract model.ts images.npy -o dist.h5
"""


def parse_meta(items: list[str]) -> dict[str, Any]:
    """``a.b=1`` items into a nested dict (values parsed as JSON when they parse)."""
    import json

    from lsfix.errors import UsageError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise UsageError(f"--meta {item!r}: expected KEY=VALUE (KEY may be dotted: a.b)")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise UsageError(f"--meta {item!r}: {part!r} already holds a value")
            node = nxt
        node[parts[-1]] = value
    return out


def _interrupted_message(output: str) -> str:
    from lsfix.extract.distributed import DistInfo
    from lsfix.extract.writer import inspect_output, shard_path

    try:
        dist = DistInfo.from_env()
    except Exception:  # noqa: BLE001 - only for the message
        dist = None
    if output == "-":
        return "interrupted; nothing was written to stdout"
    path = output
    if dist is not None and dist.world > 1:
        path = str(shard_path(output, dist.rank, dist.world))
    try:
        st = inspect_output(path)
    except Exception:  # noqa: BLE001 - only for the message
        st = None
    if st is None or st.job is None:
        return "interrupted; no rows were written"
    total = f" of {st.rows_total}" if st.rows_total is not None else ""
    return (f"interrupted; {path} keeps {st.rows_done}{total} rows (marked incomplete); "
            "run the same command with --resume to continue")


Opt = typer.Option


@app.command("extract", help=EXTRACT_HELP, no_args_is_help=True)
def extract(
    model: Annotated[str, typer.Argument(
        metavar="MODEL", show_default=False,
        help="TorchScript FILE, package.module:factory[(args)], torchvision:NAME[(kwargs)] or "
             "timm:NAME[(kwargs)]")],
    dataset: Annotated[str, typer.Argument(
        metavar="DATASET", show_default=False,
        help="FOLDER, FILE.npy/.npz/.h5, idx:PREFIX or torchvision:NAME")],
    output: Annotated[str, Opt(
        "-o", "--output", metavar="OUT.h5", show_default=False,
        help="output file ('-' = stdout when piped; not resumable)")],
    weights: Annotated[str | None, Opt(
        "--weights", metavar="FILE|TAG|none",
        help="state dict FILE (read with weights_only=True), a torchvision/timm weights TAG "
             "(default DEFAULT, from the local cache), or none (random init)")] = None,
    trust_pickle: Annotated[bool, Opt(
        "--trust-pickle",
        help="DANGEROUS: read weights/model files with full pickle, which runs any code the "
             "file contains; only for files from a source you trust")] = False,
    root: Annotated[str | None, Opt(
        "--root", metavar="DIR", help="dataset folder for torchvision:NAME datasets")] = None,
    split: Annotated[str | None, Opt(
        "--split", help="torchvision datasets: test (default) / train / val")] = None,
    download: Annotated[bool, Opt(
        "--download", help="allow downloading the dataset or weights (off: offline)")] = False,
    images_key: Annotated[str | None, Opt("--images-key", help=".npz/.h5: images key")] = None,
    labels_key: Annotated[str | None, Opt("--labels-key", help=".npz/.h5: labels key")] = None,
    layout: Annotated[str | None, Opt(
        "--layout", metavar="nchw|nhwc|nhw|nld|nd|nl",
        help="array datasets: nchw/nhwc 4-D images (default: guessed), nld (N, L, D) "
             "sequences, nl (N, L) token ids, nd (N, D) vectors")] = None,
    limit: Annotated[int | None, Opt(
        "--limit", metavar="N", help="only the first N samples")] = None,
    resize: Annotated[str | None, Opt(
        "--resize", metavar="N|HxW",
        help="resize the shorter side to N, or to HxW exactly")] = None,
    crop: Annotated[str | None, Opt("--crop", metavar="N|HxW", help="center crop")] = None,
    mean: Annotated[str | None, Opt(
        "--mean", metavar="M[,M,M]", help="normalisation mean on the [0, 1] scale")] = None,
    std: Annotated[str | None, Opt(
        "--std", metavar="S[,S,S]", help="normalisation std on the [0, 1] scale")] = None,
    interpolation: Annotated[str | None, Opt(
        "--interpolation", metavar="bilinear|bicubic|nearest")] = None,
    channels: Annotated[int | None, Opt(
        "--channels", metavar="1|3", help="convert images to grayscale (1) or RGB (3)")] = None,
    class_names: Annotated[str | None, Opt(
        "--class-names", metavar="FILE|imagenet",
        help="names of the model's K classes, one a line (imagenet: torchvision's list)")] = None,
    no_labels: Annotated[bool, Opt("--no-labels", help="do not write /labels")] = False,
    ignore_index: Annotated[int | None, Opt(
        "--ignore-index", metavar="N", help="dense labels: value to ignore")] = None,
    output_key: Annotated[str | None, Opt(
        "--output-key", metavar="KEY|INDEX",
        help="model returns a dict/tuple: which entry")] = None,
    batch_size: Annotated[int, Opt("--batch-size", "-b", min=1)] = 64,
    workers: Annotated[int | None, Opt(
        "--workers", "-j", metavar="N",
        help="DataLoader worker processes [default: 0 for arrays, more for image "
             "files]")] = None,
    device: Annotated[str, Opt("--device", metavar="auto|cpu|cuda[:N]")] = "auto",
    amp: Annotated[str, Opt(
        "--amp", metavar="off|bf16|fp16",
        help="autocast; off means strict float32 (no TF32)")] = "off",
    dtype: Annotated[str, Opt(
        "--dtype", metavar="float32|float16|float64", help="dtype of the stored logits")
    ] = "float32",
    channels_last: Annotated[bool | None, Opt(
        "--channels-last/--no-channels-last", show_default=False,
        help="[default: on for CUDA, off for CPU]")] = None,
    resume: Annotated[bool, Opt(
        "--resume", help="continue an interrupted run of the same command")] = False,
    overwrite: OverwriteOpt = False,
    merge: Annotated[bool, Opt(
        "--merge/--no-merge", help="torchrun: rank 0 joins the shards into OUT")] = True,
    keep_shards: Annotated[bool, Opt(
        "--keep-shards", help="torchrun: keep the shards after merging")] = False,
    sync_every: Annotated[float, Opt(
        "--sync-every", metavar="SECONDS",
        help="commit appended rows at most this often")] = 1.0,
    meta: Annotated[list[str] | None, Opt(
        "--meta", metavar="KEY=VALUE",
        help="extra provenance (repeatable); dotted keys nest, values are JSON when they "
             "parse (e.g. --meta training.label_smoothing=0.2)")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a model over a dataset and save its logits."""
    with handle_errors("extract"):
        from lsfix.streams import refuse_binary_to_tty

        refuse_binary_to_tty(output)
        from lsfix.extract.preprocess import parse_floats, parse_size
        from lsfix.extract.runner import ExtractOptions, run_extract

        opts = ExtractOptions(
            model=model, dataset=dataset, output=output, weights=weights,
            trust_pickle=trust_pickle, root=root, split=split, download=download,
            images_key=images_key, labels_key=labels_key, layout=layout, limit=limit,
            resize=parse_size(resize, "--resize"), crop=parse_size(crop, "--crop"),
            mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"),
            interpolation=interpolation, channels=channels, class_names=class_names,
            labels=not no_labels, ignore_index=ignore_index, output_key=output_key,
            batch_size=batch_size, workers=workers, device=device, amp=amp, dtype=dtype,
            channels_last=channels_last, resume=resume, overwrite=overwrite, merge=merge,
            keep_shards=keep_shards, sync_every=sync_every, quiet=quiet,
            meta=parse_meta(meta or []),
            warn=lambda m: warn("extract", m), note=note,
        )
        try:
            run_extract(opts)
        except KeyboardInterrupt:
            err("extract", _interrupted_message(output))
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


@app.command("merge", no_args_is_help=True)
def merge_cmd(
    shards: Annotated[list[str], typer.Argument(
        metavar="SHARD...", show_default=False,
        help="the OUT.rank{r}-of-{w}.h5 files of one run")],
    output: Annotated[str, Opt(
        "-o", "--output", metavar="OUT.h5", show_default=False,
        help="merged lsfix file ('-' = stdout when piped)")],
    quiet: QuietOpt = False,
) -> None:
    """Join the per-rank shards of a torchrun extract into one file, in dataset order.

    Needs no torch. Rank 0 of 'torchrun ... lsfix extract' merges by itself; 'lsfix merge' is
    for shards kept with --no-merge.

    Examples:

    \b
      torchrun --nproc-per-node 2 -m lsfix extract model.ts images.npy -o dist.h5 --no-merge
      lsfix merge dist.rank*-of-2.h5 -o dist.h5
    """
    with handle_errors("merge"):
        from lsfix.streams import refuse_binary_to_tty

        refuse_binary_to_tty(output)
        from lsfix.extract.writer import merge_shards

        res = merge_shards(shards, output)
        if not quiet:
            note(f"lsfix merge: wrote {output if output != '-' else '<stdout>'}: "
                 f"{res['rows']} rows from {res['shards']} shards")
