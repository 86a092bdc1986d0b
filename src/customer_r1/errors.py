"""User mistakes as one exception family, so the CLI answers every one the same way.

Anything a user can get wrong (a missing or wrong file, a bad row, a bad option value, a
directory of the wrong kind, a model that is not there, a busy port, an unreachable
endpoint) raises a :class:`UserError` naming *what* is wrong, *where* (the file, row,
field or option) and a *hint*. The command line catches the family once, at the top, and
prints ``error: WHAT (WHERE) - HINT`` on one line with exit code 2; anything else is a bug
and gets a traceback log (``customer_r1.cli.main``).

This module sits at the bottom of the import graph: every layer may raise these.
"""

from __future__ import annotations

#: Exit code of a user mistake (as click uses for usage errors).
USER_ERROR_EXIT = 2


class UserError(Exception):
    """Something the user can fix. ``where``: file, file:row, field or --option."""

    def __init__(self, what: str, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = " ".join(str(what).split())
        self.where = where
        self.hint = hint

    def line(self) -> str:
        """The one line the CLI prints: ``error: WHAT (WHERE) - HINT``."""
        out = f"error: {self.what}"
        if self.where:
            out += f" ({self.where})"
        if self.hint:
            out += f" - {self.hint}"
        return " ".join(out.split())

    def __str__(self) -> str:
        return self.line().removeprefix("error: ")

    def __reduce__(self) -> tuple[object, ...]:  # keep where and hint across processes
        return (type(self), (self.what, self.where, self.hint))


class MissingInput(UserError):
    """A path the command reads does not exist."""


class BadInput(UserError):
    """A file or directory exists but is empty, corrupt or of the wrong kind."""


class BadOption(UserError):
    """An option's value is out of range or inconsistent with other options."""


class ModelNotFound(UserError):
    """A ``--model`` that is neither a checkpoint directory nor a reachable Hub id."""


class PortInUse(UserError):
    """A server cannot bind its port."""


class EndpointUnreachable(UserError):
    """An HTTP endpoint refused the connection or does not answer."""


# Loaders raised builtin exceptions before this family existed, and their callers (and
# tests) still catch those; these keep both faces so nothing upstream has to change.


class MissingFile(MissingInput, FileNotFoundError):
    """A :class:`MissingInput` that is also a ``FileNotFoundError``."""


class BadFile(BadInput, ValueError):
    """A :class:`BadInput` that is also a ``ValueError``."""


class BadValue(BadOption, ValueError):
    """A :class:`BadOption` that is also a ``ValueError``."""
