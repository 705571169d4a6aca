"""`docs/cli.md`: every command and option of `gateway`, from the parser the command line uses."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from gateway.cli import build_parser
from gateway.reference.markdown import GENERATED, code, table


def commands(parser: argparse.ArgumentParser, prefix: str = "gateway") -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(the command's words, its help, its parser) of every command that runs something, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                words = f"{prefix} {name}"
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if nested:
                    yield from commands(sub, words)
                else:
                    yield words, helps.get(name, ""), sub


def _option(action: argparse.Action) -> tuple[str, str, str]:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            name += " " + (str(action.metavar) if action.metavar else action.dest.upper())
    else:
        name = str(action.metavar or action.dest).upper()
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        name += " {" + ",".join(str(c) for c in action.choices) + "}"
    default = action.default
    shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else code(str(default))
    return code(name), action.help or "", shown


def options(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    return [_option(a) for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line at a fixed width (argparse's own follows the terminal's)."""
    formatter = argparse.HelpFormatter(parser.prog, width=100)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def render() -> str:
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        GENERATED,
        "",
        parser.description or "",
        "",
        parser.epilog or "",
        "",
        "The commands that read a config file take `--config PATH`, or `GATEWAY_CONFIG` when it is",
        "left out. `-h` on any command prints the same help as here.",
        "",
        *table(("command", "what it does"), [(code(words), text) for words, text, _ in commands(parser)]),
        "",
    ]
    for words, text, sub in commands(parser):
        lines += [f"## `{words}`", "", text + ".", "", "```", usage(sub), "```", ""]
        rows = options(sub)
        if rows:
            lines += [*table(("option", "meaning", "default"), rows), ""]
    return "\n".join(lines)
