"""The command reference and the examples cannot drift from the command line (issue 28).

docs/cli.md is generated from the Typer app (``make docs``); it must equal what the
generator renders now. Every ``customer-r1 ...`` example in the README and docs/ (the
lab notes excepted: they are history) must name a real command and only options that
command has, and every command must have at least one example.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from customer_r1.cli import app
from customer_r1.cli.docs import DEFAULT_PATH, main, render

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(customer-r1 [^`]+)`")


def test_cli_reference_is_current() -> None:
    current = (ROOT / DEFAULT_PATH).read_text(encoding="utf-8")
    assert current == render(), "docs/cli.md is out of date: run `make docs` (python -m customer_r1.cli.docs)"


def test_reference_names_every_command_and_option() -> None:
    text = render()
    for path, command in _leaf_commands().items():
        assert f"`customer-r1 {path}`" in text
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in text, (path, opt)


def test_check_mode_says_when_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "cli.md"
    assert main([str(page)]) == 0 and page.read_text(encoding="utf-8") == render()
    assert main([str(page), "--check"]) == 0
    page.write_text(render().replace("--concurrency", "--parallel"), encoding="utf-8")
    assert main([str(page), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def _leaf_commands() -> dict[str, typer.core.TyperCommand]:
    """'sim run' -> its click command, for every command that does something."""
    root = typer.main.get_command(app)
    out: dict[str, typer.core.TyperCommand] = {}

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out[" ".join(path)] = cmd  # type: ignore[assignment]

    walk(root, [])
    return out


def _doc_files() -> list[Path]:
    docs = [p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "cli.md"]
    return [ROOT / "README.md", *docs]


def _examples(text: str) -> list[str]:
    """``customer-r1`` command lines of a markdown text: in code blocks (continuation
    lines joined, comments dropped) and in inline code."""
    lines: list[str] = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("customer-r1 "):
                lines.append(line)
    lines.extend(INLINE.findall(text))
    return lines


def _check(line: str, commands: dict[str, typer.core.TyperCommand]) -> str:
    """The command path of one example; fails if it names an unknown command or option."""
    tokens = [t.strip("[]") for t in shlex.split(line, comments=True)][1:]
    words = []
    while tokens and not tokens[0].startswith("-") and any(
        p.split()[: len(words) + 1] == [*words, tokens[0]] for p in commands
    ):
        words.append(tokens.pop(0))
    path = " ".join(words)
    assert path in commands, f"unknown command in example: {line}"
    command = commands[path]
    if command.context_settings.get("ignore_unknown_options"):  # train sft/grpo: TRL's fields
        return path
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "--debug"}
    for token in tokens:
        if token.startswith("--"):
            assert token.split("=")[0] in known, f"{path} has no option {token}: {line}"
    return path


def test_every_example_is_a_real_command() -> None:
    commands = _leaf_commands()
    seen: set[str] = set()
    for doc in _doc_files():
        for line in _examples(doc.read_text(encoding="utf-8")):
            seen.add(_check(line, commands))
    missing = sorted(set(commands) - seen)
    assert not missing, f"commands without an example in README.md or docs/: {missing}"


def test_example_checker_catches_mistakes() -> None:
    commands = _leaf_commands()
    assert _check("customer-r1 sim run --world w --out o --concurrency 4", commands) == "sim run"
    assert _check("customer-r1 train sft --config r.yaml --learning_rate 1e-5", commands) == "train sft"
    with pytest.raises(AssertionError, match="has no option"):
        _check("customer-r1 sim run --world w --parallel 4", commands)
    with pytest.raises(AssertionError, match="unknown command"):
        _check("customer-r1 sim launch --world w", commands)
