"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint (a vLLM server, a hosted API).

Long evaluation runs meet rate limits, restarts and the odd garbage body. The policy:

* 429, 5xx, timeouts and network errors are retried with capped exponential
  backoff and jitter, waiting what ``Retry-After`` asks when the server says;
* 401/403/404 raise :class:`EndpointError` at once (every request would fail alike);
* other 4xx (a prompt too long, a bad parameter) and malformed bodies fail that one
  prompt: :class:`Generation` carries the reason and the run goes on.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3

from customer_r1.evaluation.backends.base import EndpointError, Generation, Messages

_FATAL_STATUS = (401, 403, 404)


def chat_completions_url(endpoint: str) -> str:
    """Accept ``http://host:8000``, ``.../v1`` or the full ``.../v1/chat/completions``."""
    url = endpoint.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class RequestStats:
    """Counters over the backend's life; thread-safe via :attr:`lock`."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    succeeded: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _bump(self, table: dict[str, int], key: str) -> None:
        with self.lock:
            table[key] = table.get(key, 0) + 1


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OpenAIBackend:
    """Chat completions over HTTP with retries and ``concurrency`` requests in flight.

    The API key is read from the environment variable ``api_key_env`` (optional:
    local vLLM servers need none). ``sleep`` and ``rng`` are injectable so tests can
    check the backoff schedule without waiting for it.
    """

    def __init__(
        self,
        endpoint: str,
        model_name: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_retry_after: float = 300.0,
        concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.url = chat_completions_url(endpoint)
        self.model_name = model_name
        self.name = model_name
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.concurrency = max(1, int(concurrency))
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        self._rng = rng
        self.stats = RequestStats()
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self._ssl = _ssl_context()  # built once (it reads the CA bundle), shared
        self._local = threading.local()
        self._clients: list[urllib3.PoolManager] = []
        self._clients_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")

    def _client(self) -> urllib3.PoolManager:
        """The calling thread's client, with its one keep-alive connection. One client per
        thread, not one pool for all (a pool shared by hundreds of requests in flight costs
        each of them a scan of it). urllib3, not httpx: 0.34 against 0.50 ms of CPU per
        request, and the simulator's runner spends ~1.4 ms per step in all (see
        ``benchmarks/sim_endpoint_throughput.py``). A proxy from the environment
        (``https_proxy``, ``no_proxy``) is used as httpx would."""
        client = getattr(self._local, "client", None)
        if client is None:
            kw: dict[str, Any] = {"num_pools": 4, "maxsize": 1, "block": False, "retries": False,
                                  "timeout": self._timeout, "headers": self._headers}
            if self.url.startswith("https:"):
                kw["ssl_context"] = self._ssl
            proxy = _proxy_for(self.url)
            client = urllib3.ProxyManager(proxy, **kw) if proxy else urllib3.PoolManager(**kw)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    # -------------------------------------------------------------------- one request

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry ``attempt`` (0-based): the server's ``Retry-After`` when
        given (capped at ``max_retry_after``), else ``base * 2**attempt`` capped at
        ``backoff_max`` with "equal jitter" (half fixed, half random) so that many
        workers hit by the same 429 do not come back in lockstep."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        raw = min(self.backoff_max, self.backoff_base * (2**attempt))
        return raw / 2 + raw / 2 * self._rng()

    def _payload(self, messages: Messages, max_new_tokens: int, temperature: float,
                 top_p: float, n: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
        }
        if n != 1:
            body["n"] = n
        body.update(self.extra_body)
        return body

    def _attempt(self, payload: dict[str, Any], n: int) -> tuple[str, ...]:
        with self.stats.lock:
            self.stats.requests += 1
        try:
            resp = self._client().urlopen("POST", self.url, body=json.dumps(payload).encode(),
                                          preload_content=False, redirect=False)
            try:
                status, retry_after, content = resp.status, resp.headers.get("retry-after"), resp.read()
            finally:
                resp.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError for urllib3)
            raise _Retryable(f"network error ({type(exc).__name__}: {exc})") from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise _Retryable(f"timeout ({type(exc).__name__})") from exc
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, a broken or closed connection
            raise _Retryable(f"network error ({type(exc).__name__}: {exc})") from exc
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", parse_retry_after(retry_after))
        if status in _FATAL_STATUS:
            raise EndpointError(
                f"{self.url} answered HTTP {status} for model {self.model_name!r}: "
                f"{_snippet(content)} (check --endpoint, --model-name and the API key variable)"
            )
        if status >= 400:
            raise _Failed(f"HTTP {status}: {_snippet(content)}")
        return _texts_from_body(content, n)

    def _one(self, messages: Messages, max_new_tokens: int, temperature: float, top_p: float,
             n: int) -> Generation:
        payload = self._payload(messages, max_new_tokens, temperature, top_p, n)
        attempt = 0
        while True:
            try:
                texts = self._attempt(payload, n)
            except _Failed as exc:
                return self._fail(exc.reason)
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    return self._fail(f"gave up after {attempt + 1} attempts: {exc.reason}")
                wait = self.backoff(attempt, exc.retry_after)
                with self.stats.lock:
                    self.stats.retries += 1
                    self.stats.waits.append(wait)
                self.stats._bump(self.stats.retry_reasons, exc.reason.split(" (")[0])
                self._sleep(wait)
                attempt += 1
                continue
            with self.stats.lock:
                self.stats.succeeded += 1
            return Generation(texts=texts)

    def _fail(self, reason: str) -> Generation:
        with self.stats.lock:
            self.stats.failures += 1
        self.stats._bump(self.stats.failure_reasons, reason.split(":")[0])
        return Generation(error=reason)

    def generate_one(self, messages: Messages, *, max_new_tokens: int = 512, temperature: float = 0.0,
                     top_p: float = 1.0, n: int = 1) -> Generation:
        """One prompt in the calling thread, with the retries of :meth:`generate` (a caller
        that keeps its own requests in flight, as the simulator's pipelined runner does)."""
        return self._one(messages, max_new_tokens, temperature, top_p, n)

    # -------------------------------------------------------------------- batch

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
    ) -> list[Generation]:
        """All prompts, up to ``concurrency`` in flight; results in input order."""
        futures = [
            self._pool.submit(self._one, p, max_new_tokens, temperature, top_p, n) for p in prompts
        ]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.clear()  # closes its connections


def _ssl_context() -> Any:
    """Certificates as httpx reads them: ``SSL_CERT_FILE``, else certifi's bundle, else the
    system's."""
    import ssl

    cafile = os.environ.get("SSL_CERT_FILE") or None
    if cafile is None:
        with contextlib.suppress(ImportError):
            import certifi

            cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile)


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for ``url`` (``http_proxy`` / ``https_proxy``, not for hosts in
    ``no_proxy``), or None."""
    u = urlsplit(url)
    proxy = urllib.request.getproxies_environment().get(u.scheme)
    if not proxy or urllib.request.proxy_bypass_environment(u.hostname or ""):
        return None
    return proxy


def _snippet(text: str | bytes, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _texts_from_body(content: bytes, n: int) -> tuple[str, ...]:
    """The choices' message contents, or :class:`_Failed` naming what is malformed."""
    try:
        body = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Failed(f"malformed response: body is not JSON ({_snippet(repr(content[:80]))})") from exc
    if not isinstance(body, dict):
        raise _Failed(f"malformed response: top level is {type(body).__name__}, not an object")
    if "error" in body and "choices" not in body:
        raise _Failed(f"malformed response: error object {_snippet(json.dumps(body['error']))}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Failed("malformed response: no 'choices'")
    texts: list[str] = []
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    for choice in ordered[:n]:
        msg = choice.get("message") if isinstance(choice, dict) else None
        text = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(text, str):
            raise _Failed("malformed response: choice without message.content text")
        texts.append(text.strip())
    return tuple(texts)
