"""Help and completion polish, applied once to the click commands typer builds.

* **Metavars** name what a value is (``--coverage C``, ``-o PATH``), not its Python type
  (typer prints ``<list[str]>`` and ``<int range>`` by default).
* **Examples stay whole**: paragraphs of a command's help whose lines start with ``lsfix ``
  are marked with click's ``\\b`` so the formatter does not re-wrap a command mid-way.
* **Option values complete**: ``--convention``, ``--format``, ``-m/--method``,
  ``-s/--score``, ``--input`` and ``--fail-if`` offer their values on TAB, in every shell
  (typer's completion calls lsfix back, so the lists are never stale).

* **Panels**: options declared with typer's ``rich_help_panel`` (:mod:`lsfix.cli.options`:
  ``Input``, and ``Advanced (dense files, Dask, memory)``) are listed in their own section after
  the common options, also in the plain help lsfix prints (typer draws panels only with rich).

Everything here is keyed by option name, so a command module only declares its options.
"""

from __future__ import annotations

from typing import Any

#: option name (click's ``param.name``) -> metavar
METAVARS = {
    "input": "FILE", "inputs": "FILE...", "output": "PATH", "plot": "PATH", "report": "PATH",
    "fit": "FILE", "val": "FILE", "labels": "FILE", "params": "FILE", "save_params": "PATH",
    "coverage": "C", "risk": "R", "score": "SCORE", "scores": "SCORE", "method": "SCORE",
    "convention": "NAME", "fmt": "FORMAT", "format": "FORMAT", "fail_if": "RULE",
    "seed": "N", "bootstrap": "N", "level": "LEVEL", "p": "P", "grid": "GRID", "name": "NAME",
    "fit_fraction": "FRACTION", "input_kind": "KIND", "meta": "KEY=VALUE",
}

FORMATS_REPORT = ("table", "tsv", "json")
FORMATS_SCORE = ("h5", "tsv")
INPUT_KINDS = ("logits", "probs", "log-probs")


def _score_names() -> list[str]:
    import lsfix

    return [*lsfix.score_families(), "pnorm:2", "energy:1"]


def _conventions() -> list[str]:
    import lsfix

    return list(lsfix.CONVENTIONS)


def value_choices(command: str, param_name: str) -> list[str] | None:
    """The values ``--<param>`` of ``lsfix <command>`` completes to, or None."""
    if param_name == "convention":
        return _conventions()
    if param_name in ("fmt", "format"):
        return list(FORMATS_SCORE if command in ("score", "normalise") else FORMATS_REPORT)
    if param_name in ("method", "score", "scores"):
        return _score_names()
    if param_name == "input_kind":
        return list(INPUT_KINDS)
    if param_name == "fail_if":
        import lsfix

        return [f"{m}>" for m in lsfix.bootstrap_metrics()]
    return None


def _completer(command: str, param_name: str) -> Any:
    """TAB completion of ``--<param_name>`` of ``lsfix <command>``: the values are looked up
    on the TAB itself (so building the CLI imports no :mod:`lsfix.core`, hence no numpy)."""

    def complete(ctx: Any, param: Any, incomplete: str) -> list[str]:
        return [v for v in value_choices(command, param_name) or []
                if v.startswith(incomplete)]

    return complete


#: option names that complete to a list of values (:func:`value_choices`)
COMPLETED = ("convention", "fmt", "format", "method", "score", "scores", "input_kind",
             "fail_if")


def _keep_examples(text: str | None) -> str | None:
    """Mark paragraphs of ``lsfix ...`` lines (examples) or with indented lines (lists, such
    as the gate rules) as not to be re-wrapped."""
    if not text:
        return text
    paragraphs = text.split("\n\n")
    out = []
    for para in paragraphs:
        lines = [ln for ln in para.splitlines() if ln.strip()]
        listed = any(ln[:1].isspace() for ln in lines[1:])
        example = bool(lines) and lines[0].lstrip().startswith(("lsfix ", "torchrun "))
        if (example or listed) and not para.startswith("\b"):
            para = "\b\n" + para
        out.append(para)
    return "\n\n".join(out)


def _fallback_metavar(param: Any) -> str:
    """``N`` for integers, ``X`` for floats, else the option's last word in capitals."""
    kind = str(getattr(getattr(param, "type", None), "name", "")).lower()
    if "int" in kind:
        return "N"
    if "float" in kind:
        return "X"
    return (param.name or "value").rsplit("_", 1)[-1].upper()


def _plain_argument(param: Any) -> None:
    """Show an argument as ``FILE`` / ``[FILE]`` / ``FILE...`` (typer: ``{FILE} <str>``)."""
    name = param.metavar or (param.name or "").upper()
    many = "..." if param.nargs != 1 and not name.endswith("...") else ""
    usage = name + many if param.required else f"[{name}]{many}"
    param.display_type_rich = lambda ctx: None
    param._usage_display_name = lambda: usage
    param._rich_display_name = lambda: name + many


def format_options_in_panels(cmd: Any, ctx: Any, formatter: Any) -> None:
    """``Arguments``, ``Options`` (options without a panel), then one section per
    ``rich_help_panel`` in order of first appearance, the advanced panel last."""
    from lsfix.cli.options import ADVANCED

    args: list[tuple[str, str]] = []
    panels: dict[str | None, list[tuple[str, str]]] = {None: []}
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if getattr(param, "param_type_name", "") == "argument":
            args.append(record)
        else:
            panels.setdefault(getattr(param, "rich_help_panel", None), []).append(record)
    order = [p for p in panels if p != ADVANCED] + ([ADVANCED] if ADVANCED in panels else [])
    if args:
        with formatter.section("Arguments"):
            formatter.write_dl(args)
    for panel in order:
        if panels[panel]:
            with formatter.section(panel or "Options"):
                formatter.write_dl(panels[panel])


_PANELLED: dict[type, type] = {}


def _panelled(cls: type) -> type:
    """``cls`` with :func:`format_options_in_panels` as its options section (made once)."""
    if cls not in _PANELLED:
        _PANELLED[cls] = type(f"Panelled{cls.__name__}", (cls,), {
            "format_options": lambda self, ctx, formatter: format_options_in_panels(
                self, ctx, formatter)})
    return _PANELLED[cls]


def plain_coercion(param: Any, annotation: type) -> None:
    """Give ``param`` typer's pass-through coercion (values of type ``annotation`` pass as
    they are; its callback checks them) instead of the pydantic adapter typer >= 0.2x builds
    the first time a parameter is processed, for any value, None included. Parsing the root
    (``lsfix curve --help``, every TAB) then imports no pydantic. Older typers have no such
    layer; then nothing is done."""
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:
        return
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
    if info is not None and getattr(param, "_runtime_param", False) is None:
        param._runtime_param = PassThroughRuntimeParam(parameter_info=info,
                                                       annotation=annotation)


def _plain_root_options(group: Any) -> None:
    """The root's own options: ``-V`` and ``-h`` flags, and the shell names of
    ``--show-completion``/``--install-completion`` (checked by their callbacks)."""
    for param in getattr(group, "params", []):
        if param.name in ("show_completion", "install_completion"):
            plain_coercion(param, str)
        elif param.name == "version":
            plain_coercion(param, bool)


def polish(group: Any) -> None:
    """Apply the metavars, example paragraphs and value completion to every command."""
    if getattr(group, "_lsfix_polished", False):
        return
    group._lsfix_polished = True
    _plain_root_options(group)
    group.help = _keep_examples(getattr(group, "help", None))
    for cmd_name, cmd in getattr(group, "commands", {}).items():
        cmd.help = _keep_examples(cmd.help)
        cmd.__class__ = _panelled(type(cmd))  # the same command, its options in panels
        for param in cmd.params:
            name = param.name or ""
            if getattr(param, "metavar", None) is None and not getattr(param, "is_flag", False):
                param.metavar = METAVARS.get(name) or _fallback_metavar(param)
            if getattr(param, "param_type_name", "") == "argument":
                _plain_argument(param)
            if name in COMPLETED and getattr(param, "_custom_shell_complete", None) is None:
                param._custom_shell_complete = _completer(cmd_name, name)
