"""What every inference backend promises: chat messages in, assistant text out.

Predict and rationale synthesis only talk to this interface, so a local HF model,
the vLLM offline engine and any OpenAI-compatible server are interchangeable there.
A backend reports per-prompt failures as data (:class:`Generation.error`) instead of
raising, so one bad response costs one row, not the whole run; only errors that
would fail every request alike (bad key, wrong URL) raise :class:`EndpointError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from customer_r1.errors import BadOption, EndpointUnreachable, UserError

#: One chat conversation: ``[{"role": ..., "content": ...}, ...]``.
Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Generation:
    """The outcome of one prompt: ``n`` sampled texts, or no text and the reason why."""

    texts: tuple[str, ...] = ()
    error: str | None = None

    @property
    def text(self) -> str | None:
        """The first (for ``n=1`` the only) text; None when the request failed."""
        return self.texts[0] if self.texts else None

    @property
    def ok(self) -> bool:
        return self.error is None


class EndpointError(UserError, RuntimeError):
    """A failure no retry can fix and that every further request would repeat
    (authentication, unknown model or URL): the run stops with this message, printed by
    the CLI as one line (a :class:`~customer_r1.errors.UserError`)."""


class BackendUnavailable(BadOption, ImportError):
    """An optional inference engine is not installed; the message says how to get it
    (a user mistake: the option asks for an engine this install lacks)."""


@runtime_checkable
class Backend(Protocol):
    """Chat completion over a batch of conversations, results in input order."""

    name: str

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
    ) -> list[Generation]: ...

    def close(self) -> None: ...


def probe_endpoint(url: str, where: str = "--endpoint", timeout: float = 5.0) -> None:
    """Raise :class:`~customer_r1.errors.EndpointUnreachable` unless a TCP connection to
    ``url``'s host and port opens: a server that is down answers in one line at once,
    instead of every request failing through its retries. Sends nothing."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise BadOption(f"not an http(s) URL: {url}", where=where, hint="e.g. http://localhost:8000/v1")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EndpointUnreachable(
            f"cannot connect to {url} ({reason})", where=where,
            hint="is the server running and the host and port right? (e.g. `vllm serve MODEL --port 8000`)",
        ) from exc
