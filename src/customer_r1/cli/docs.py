"""Write ``docs/cli.md``, the command reference, from the Typer app (``make docs``).

    python -m customer_r1.cli.docs [PATH]     # default docs/cli.md; --check: exit 1 if stale

The page is Typer's own generator (``typer.cli.get_docs_for_click``, what ``typer
customer_r1.cli utils docs`` runs) over the installed ``customer-r1`` command: every
command, argument and option with its help, nothing written by hand, so it cannot drift
from the code. Help texts are kept as written (not converted to HTML). A test
(``tests/test_cli_docs.py``) fails when the page differs from what this renders.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PATH = Path("docs/cli.md")
TITLE = "Command reference: `customer-r1`"
NOTE = (
    "Generated from the command's own help by `make docs` (`python -m customer_r1.cli.docs`); "
    "do not edit by hand. Examples of every command: the [README](../README.md) and "
    "[usage.md](usage.md)."
)


def render() -> str:
    """The page's text: the title, a note that it is generated, then Typer's reference."""
    import typer
    from typer.cli import get_docs_for_click

    from customer_r1.cli import app
    from customer_r1.cli.entry import PROG

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name=PROG)
    body = get_docs_for_click(obj=command, ctx=ctx, name=PROG, title=TITLE).strip()
    heading, _, rest = body.partition("\n\n")
    return f"{heading}\n\n{NOTE}\n\n{rest}\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else DEFAULT_PATH
    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
