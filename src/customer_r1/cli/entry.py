"""The one place the command line answers a failure (issue 15).

* A user mistake, :class:`~customer_r1.errors.UserError` or a command-line usage error
  (unknown option, bad choice, out-of-range number, missing argument), is one line on
  stderr, ``error: WHAT (WHERE) - HINT``, and exit code 2.
* Ctrl-C is ``error: interrupted`` and exit code 130.
* Anything else is a bug: one line naming the exception and the log file that holds
  the full traceback (``$CUSTOMER_R1_LOG_DIR``, default ``~/.cache/customer-r1/logs``),
  exit code 1. ``--debug`` anywhere on the command line, or ``CUSTOMER_R1_DEBUG=1``,
  prints the traceback instead.

Every Typer app of the project is made with :func:`new_app`, whose click group runs
this handler in its ``main``: the installed ``customer-r1`` script, ``python -m``, and
``typer.testing.CliRunner`` on any sub-app all answer the same way.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from customer_r1.errors import USER_ERROR_EXIT, UserError

BUG_EXIT = 1
INTERRUPTED_EXIT = 130
DEBUG_FLAG = "--debug"
DEBUG_ENV = "CUSTOMER_R1_DEBUG"
LOG_DIR_ENV = "CUSTOMER_R1_LOG_DIR"
PROG = "customer-r1"


def split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Remove every bare ``--debug`` before ``--`` (TRL's own debug option, under ``train``,
    takes the ``--debug=VALUE`` form)."""
    out: list[str] = []
    debug = False
    for i, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == DEBUG_FLAG:
            debug = True
            continue
        out.append(arg)
    return out, debug


def debug_from_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def log_dir() -> Path:
    """Where tracebacks of unexpected errors are kept (created on demand)."""
    d = Path(os.environ.get(LOG_DIR_ENV) or Path.home() / ".cache" / "customer-r1" / "logs").expanduser()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        d = Path(tempfile.gettempdir()) / "customer-r1-logs"
        d.mkdir(parents=True, exist_ok=True)
    return d


def save_traceback(exc: BaseException, argv: Sequence[str]) -> Path:
    """Write the full traceback with the command line and versions; return its path."""
    from customer_r1 import __version__

    now = datetime.datetime.now()
    path = log_dir() / f"{PROG}-{now:%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = (
        f"command: {' '.join([PROG, *argv])}\n"
        f"time: {now.isoformat(timespec='seconds')}\n"
        f"customer-r1 {__version__}, python {sys.version.split()[0]}, cwd {os.getcwd()}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    path.write_text(text, encoding="utf-8")
    return path


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clean(message: str) -> str:
    message = _one_line(message).rstrip(".")
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")  # pydantic's
    return message[:1].lower() + message[1:]


def _param_where(exc: Any) -> str | None:
    hint = getattr(exc, "param_hint", None)
    if hint:
        hints = [hint] if isinstance(hint, str) else list(hint)
        return " / ".join(h.strip("'\"") for h in hints)
    param = getattr(exc, "param", None)
    if param is not None:
        from customer_r1.cli.params import where_of

        return where_of(param)
    return None


def usage_line(exc: Any) -> str:
    """One line for a click usage error, naming the option and pointing at ``--help``."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else PROG
    hint = f"see {path} --help"
    exceptions = click_exceptions
    if isinstance(exc, exceptions.NoSuchOption):
        if exc.possibilities:
            hint = f"did you mean {' or '.join(sorted(exc.possibilities))}? {hint}"
        return UserError(f"no such option {exc.option_name}", None, hint).line()
    if isinstance(exc, exceptions.MissingParameter):
        param = exc.param
        kind = exc.param_type or (param.param_type_name if param is not None else "parameter")
        return UserError(f"missing {kind}", _param_where(exc), hint).line()
    if isinstance(exc, exceptions.BadParameter):
        return UserError(_clean(exc.message), _param_where(exc), hint).line()
    return UserError(_clean(exc.format_message()), None, hint).line()


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_handled(invoke: Callable[[], Any], argv: Sequence[str], debug: bool) -> int:
    """Run ``invoke`` (a click ``main`` in non-standalone mode); return the exit code."""
    no_args_help = getattr(click_exceptions, "NoArgsIsHelpError", ())
    try:
        rv = invoke()
    except UserError as exc:  # --debug or not: a user mistake is never a traceback
        _say(exc.line())
        return USER_ERROR_EXIT
    except click_exceptions.ClickException as exc:
        if no_args_help and isinstance(exc, no_args_help):
            exc.show(file=sys.stdout)
            return 0
        _say(usage_line(exc))
        return USER_ERROR_EXIT
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _say("error: interrupted")
        return INTERRUPTED_EXIT
    except BrokenPipeError:  # `customer-r1 ... | head`: the reader left, nothing to say
        # point stdout at /dev/null so the interpreter's final flush stays quiet
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BUG_EXIT
    except Exception as exc:
        if debug:
            traceback.print_exc()
            _say(f"error: unexpected {type(exc).__name__} (a bug, not your input; traceback above)")
            return BUG_EXIT
        what = f"unexpected {type(exc).__name__}: {_one_line(exc)}"
        try:
            where = f"full traceback in {save_traceback(exc, argv)}"
        except OSError as log_exc:
            where = f"no log written: {log_exc}"
        _say(UserError(what, where, f"a bug, not your input; rerun with {DEBUG_FLAG} to print it").line())
        return BUG_EXIT
    code = rv if isinstance(rv, int) else 0
    if code == INTERRUPTED_EXIT:  # typer turns Ctrl-C inside a command into Exit(130)
        _say("error: interrupted")
    return code


class HandledGroup(TyperGroup):
    """A Typer group whose ``main`` answers failures as the module doc says."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv, flag = split_debug(list(sys.argv[1:] if args is None else args))
        debug = flag or debug_from_env()
        code = run_handled(
            lambda: super(HandledGroup, self).main(
                args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            ),
            argv,
            debug,
        )
        if standalone_mode:
            sys.exit(code)
        return code


def new_app(**kwargs: Any) -> typer.Typer:
    """A ``typer.Typer`` for a command group of this project (errors handled as above)."""
    kwargs.setdefault("cls", HandledGroup)
    kwargs.setdefault("pretty_exceptions_enable", False)
    return typer.Typer(**kwargs)
