"""Every option more than one command has, declared once (issue 17).

The same flag has the same help and the same meaning wherever it appears:

- `-o/--output PATH`: where the command's main output goes; `-` is stdout.
- `-f/--format`: the format of that output: `table`, `tsv` or `json` for the reports of
  `curve`, `compare` and `audit`; `h5` or `tsv` for the scores that `score` and `normalise`
  write (a scores file, or a table of the evaluated rows: `sample_id` when known,
  `confidence` holding the score's value exactly as stored, `correct`, one column per group).
  For `msp` and `msp_ts` the stored value is log-MSP, the log of the max softmax probability:
  the same ranking as MSP, without its saturation at 1 (`exp` gives MSP).
- `-q/--quiet`: no progress, notes or warnings on stderr; an error still prints its one line.
- `--labels FILE` and `--input KIND`: labels for the input(s) (`.npy`; an array of an `.npz`,
  `FILE.npz:KEY` such as `arr_1` of `np.savez(f, logits, labels)`; `.txt`; a column of a
  `.csv`/`.tsv`, `FILE.csv:COLUMN`), and what the input's numbers are.
- `--overwrite`: replace an existing `-o` file (and `--save-params` file). Without it,
  `score`, `normalise` and `extract` refuse to replace an existing file, before any work. A
  score computed now replaces a stored score of the same name *in the file written*: the
  input never changes, so that is no clash. Two inputs (`--with`) holding one score name with
  different values are a clash; `--overwrite` keeps the `--with` one.
- `--plot PATH`: the risk-coverage plot, `.png`, `.svg` or `.pdf`.

One rule for where files go: every file lsfix writes (`-o`, `--plot`, `--save-params`,
`--rank-map`) goes into a folder that exists; a missing folder is refused before any work
(exit 1, `folder 'x' does not exist; nothing was written`). lsfix makes no folder the user did
not name (`--report` names one).

Options for dense files, Dask and memory are listed apart in `--help`, under
"Advanced (dense files, Dask, memory)", and those about reading inputs under "Input" (typer's
`rich_help_panel`; `lsfix.cli.helptext` draws the panels in the plain help too).
"""

from __future__ import annotations

from typing import Annotated

import typer

#: the ``--help`` panel of options most users never need
ADVANCED = "Advanced (dense files, Dask, memory)"
#: the ``--help`` panel of options about how inputs are read
INPUT = "Input"

InputArg = Annotated[
    str,
    typer.Argument(help="Input file (lsfix HDF5, .npz, .npy, .pt, .csv, .tsv) or - for stdin.",
                   show_default=True),
]
OutputOpt = Annotated[str, typer.Option(
    "-o", "--output", help="Output path, or - for stdout (its folder must exist).")]
ConventionOpt = Annotated[
    str,
    typer.Option("--convention", "-c",
                 help="AURC convention: lsfix (mean risk over k=1..n), xia (paper, trapezoid "
                      "from 0), fd-shifts, torch-uncertainty."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table | tsv | json (default: table on a terminal, "
                                        "tsv otherwise)."),
]
ScoresFormatOpt = Annotated[
    str,
    typer.Option("--format", "-f",
                 help="h5 (a scores file) or tsv (a table of the evaluated rows: sample_id when "
                      "known, confidence = the score's value as stored, log-MSP for msp and "
                      "msp_ts; correct; one column per group)."),
]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress, notes or warnings on stderr (errors still print).")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace the -o (and --save-params) file if it exists.")]
PlotOpt = Annotated[str | None, typer.Option(
    "--plot", help="Write the RC plot (.png/.svg/.pdf; its folder must exist).")]
CoverageOpt = Annotated[list[str] | None, typer.Option(
    "--coverage", help="Coverage(s) in (0, 1] for risk@coverage (repeatable or a,b).")]
RiskOpt = Annotated[list[str] | None, typer.Option(
    "--risk", help="Risk(s) in [0, 1] for coverage@risk (repeatable or a,b).")]
BootOpt = Annotated[int, typer.Option("--bootstrap", "-b",
                                      help="Bootstrap replicates for intervals (0 = none).")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed (>= 0).")]
LevelOpt = Annotated[float, typer.Option("--level", help="Interval confidence level.")]
PercentOpt = Annotated[bool, typer.Option("--percent", help="Print rates ×100 (like %AURC).")]
ScoreOpt = Annotated[list[str] | None, typer.Option(
    "--score", "-s", help="Score to evaluate (repeatable; stored name or a score spec).")]
ByOpt = Annotated[str | None, typer.Option(
    "--by", metavar="class|predicted|image|NAME",
    help="Also report every metric per group: true class, predicted class, image (dense "
         "files), or a group NAME (/groups/NAME or a table column); 'all' is the whole file.")]
LabelsOpt = Annotated[str | None, typer.Option(
    "--labels", metavar="FILE", rich_help_panel=INPUT,
    help="Labels for the input(s): .npy, an .npz array (FILE.npz:KEY, e.g. arr_1), .txt, or a "
         "column of a .csv/.tsv (FILE.csv:COLUMN); integers or class names.")]
InputKindOpt = Annotated[str | None, typer.Option(
    "--input", metavar="KIND", rich_help_panel=INPUT,
    help="What the input's numbers are: logits, probs or log-probs (default: logits, with "
         "probabilities and log-probabilities detected and said so).")]
WithOpt = Annotated[
    list[str] | None,
    typer.Option("--with", rich_help_panel=INPUT,
                 help="Scores file(s) computed from this input's logits to join "
                      "(their scores, fit mask, correctness); checked by fingerprint."),
]
AllowIncompleteOpt = Annotated[bool, typer.Option(
    "--allow-incomplete", rich_help_panel=INPUT,
    help="Read an interrupted extract output anyway.")]
IgnoreIndexOpt = Annotated[
    int | None,
    typer.Option("--ignore-index", rich_help_panel=ADVANCED,
                 help="Label value of pixels/rows never evaluated (e.g. 255 or -100), for "
                      "inputs that do not record one."),
]
SchedulerOpt = Annotated[
    str,
    typer.Option("--scheduler", metavar="sync|threads|processes|ADDRESS",
                 rich_help_panel=ADVANCED,
                 help="Where the work runs: sync (one process, default), threads or processes "
                      "(Dask on this machine), or a dask.distributed address such as "
                      "tcp://host:8786. Numbers are identical; needs lsfix[dask] unless sync."),
]
SchedulerTimeoutOpt = Annotated[
    float,
    typer.Option("--scheduler-timeout", metavar="SECONDS", rich_help_panel=ADVANCED,
                 help="How long to wait for a --scheduler ADDRESS to answer (default 10); "
                      "then one error line, never a hang."),
]
BootUnitOpt = Annotated[str, typer.Option(
    "--bootstrap-unit", metavar="row|image", rich_help_panel=ADVANCED,
    help="What the bootstrap resamples: rows, or whole images of a dense file (pixels of "
         "one image are not independent; paired differences draw the same images for both).")]

SubsampleOpt = Annotated[str | None, typer.Option(
    "--subsample-pixels", metavar="N[/IMAGES]", rich_help_panel=ADVANCED,
    help="Dense files: evaluate N random pixels of every IMAGES images (default 1; the "
         "paper: 5000/12), drawn with --seed among the evaluated pixels.")]
MemoryLimitOpt = Annotated[str, typer.Option(
    "--memory-limit", metavar="SIZE", rich_help_panel=ADVANCED,
    help="Scores computed from logits are evaluated out of core (exact, bounded memory) "
         "for dense files, or when the in-memory path would need more than SIZE (2G, "
         "512M; 0 = always). Options needing per-row arrays use the in-memory path.")]
TmpdirOpt = Annotated[str | None, typer.Option(
    "--tmpdir", metavar="DIR", rich_help_panel=ADVANCED,
    help="Folder for the out-of-core path's temporary files (default: TMPDIR, else the "
         "system's); its free space is checked before starting.")]

__all__ = [
    "ADVANCED", "INPUT", "AllowIncompleteOpt", "BootOpt", "BootUnitOpt", "ByOpt",
    "ConventionOpt", "CoverageOpt", "FormatOpt", "LevelOpt", "PercentOpt", "ScoreOpt",
    "SeedOpt", "IgnoreIndexOpt", "InputArg", "InputKindOpt", "LabelsOpt", "OutputOpt",
    "MemoryLimitOpt", "OverwriteOpt", "PlotOpt", "QuietOpt", "RiskOpt", "SchedulerOpt",
    "SchedulerTimeoutOpt", "ScoresFormatOpt", "SubsampleOpt", "TmpdirOpt", "WithOpt",
]
