"""Every option of every `tradepulse` command says what it does (`--help` is the manual an
operator has at 3 a.m.)."""

from __future__ import annotations

import argparse

import supervisor


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            # the command list of the parent's help: a command added without help= has
            # no entry in it at all
            helps = {c.dest: (c.help or "").strip() for c in action._choices_actions}
            missing += [f"{path} {name}" for name in action.choices if not helps.get(name)]
            continue
        if action.help == argparse.SUPPRESS or not (action.help or "").strip():
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    for name, sub in _subparsers(parser).items():
        missing += _undocumented(sub, f"{path} {name}")
    return missing


def test_every_option_of_every_command_has_help() -> None:
    """Walks build_parser(): each command has a help line and each of its arguments
    (positional or option) non-empty help text."""
    parser = supervisor.build_parser()
    commands = _subparsers(parser)
    assert {"run", "status", "preflight", "kill-switch"} <= set(commands)
    assert _undocumented(parser, "tradepulse") == []


def test_the_walk_sees_a_missing_help() -> None:
    """The walk itself finds an undocumented option in a nested subcommand."""
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="cmd")
    child = sub.add_parser("child", help="a command")
    child.add_argument("--documented", help="yes")
    child.add_argument("--bare")
    sub.add_parser("nohelp")
    assert _undocumented(parser, "x") == ["x nohelp", "x child --bare"]
