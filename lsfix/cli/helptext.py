"""Help and completion polish, applied once to the click commands typer builds.

* **Metavars** name what a value is (``--coverage C``, ``-o PATH``), not its Python type
  (typer prints ``<list[str]>`` and ``<int range>`` by default).
* **Examples stay whole**: paragraphs of a command's help whose lines start with ``lsfix ``
  are marked with click's ``\\b`` so the formatter does not re-wrap a command mid-way.
* **Option values complete**: ``--convention``, ``--format``, ``-m/--method``,
  ``-s/--score``, ``--input`` and ``--fail-if`` offer their values on TAB, in every shell
  (typer's completion calls lsfix back, so the lists are never stale).

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
    from lsfix.core.scores import score_families

    return [*score_families(), "pnorm:2", "energy:1"]


def _conventions() -> list[str]:
    from lsfix.core import CONVENTIONS

    return list(CONVENTIONS)


def value_choices(command: str, param_name: str) -> list[str] | None:
    """The values ``--<param>`` of ``lsfix <command>`` completes to, or None."""
    if param_name == "convention":
        return _conventions()
    if param_name in ("fmt", "format"):
        return list(FORMATS_SCORE if command == "score" else FORMATS_REPORT)
    if param_name in ("method", "score", "scores"):
        return _score_names()
    if param_name == "input_kind":
        return list(INPUT_KINDS)
    if param_name == "fail_if":
        from lsfix.core.bootstrap import bootstrap_metrics

        return [f"{m}>" for m in bootstrap_metrics()]
    return None


def _completer(values: list[str]) -> Any:
    def complete(ctx: Any, param: Any, incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete


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


def polish(group: Any) -> None:
    """Apply the metavars, example paragraphs and value completion to every command."""
    if getattr(group, "_lsfix_polished", False):
        return
    group._lsfix_polished = True
    group.help = _keep_examples(getattr(group, "help", None))
    for cmd_name, cmd in getattr(group, "commands", {}).items():
        cmd.help = _keep_examples(cmd.help)
        for param in cmd.params:
            name = param.name or ""
            if getattr(param, "metavar", None) is None and not getattr(param, "is_flag", False):
                param.metavar = METAVARS.get(name) or _fallback_metavar(param)
            if getattr(param, "param_type_name", "") == "argument":
                _plain_argument(param)
            values = value_choices(cmd_name, name)
            if values is not None and getattr(param, "_custom_shell_complete", None) is None:
                param._custom_shell_complete = _completer(values)
