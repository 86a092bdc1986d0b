"""Backends: the HTTP client's retry policy against a scripted local server, the HF
backend's batched left-padded generation, and vLLM's missing-install message."""

from __future__ import annotations

import sys
import time

import pytest
from tiny_lm import FakeOpenAI, make_model, make_tokenizer, one_thread, save_tiny

from customer_r1.evaluation.backends import (
    Backend,
    BackendUnavailable,
    EndpointError,
    Generation,
    load_backend,
)
from customer_r1.evaluation.backends.openai_api import (
    OpenAIBackend,
    chat_completions_url,
    parse_retry_after,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]


class _Sleeps:
    """Records the backoff waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)


def _backend(server: FakeOpenAI, **kw) -> tuple[OpenAIBackend, _Sleeps]:
    sleeps = _Sleeps()
    kw.setdefault("max_retries", 3)
    kw.setdefault("backoff_base", 1.0)
    b = OpenAIBackend(server.url, "fake-model", sleep=sleeps, rng=lambda: 0.5, **kw)
    return b, sleeps


def test_url_normalisation_and_retry_after_parsing() -> None:
    assert chat_completions_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("https://x/v1/chat/completions") == "https://x/v1/chat/completions"
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_success_sends_model_messages_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test")
    with FakeOpenAI() as srv:
        b, _ = _backend(srv, api_key_env="MY_KEY")
        assert isinstance(b, Backend)
        [g] = b.generate([_msgs("hello")], max_new_tokens=7, temperature=0.0)
        b.close()
    assert g.ok and g.text.startswith('{"rationale"')
    assert srv.bodies[0]["model"] == "fake-model" and srv.bodies[0]["max_tokens"] == 7
    assert srv.headers[0]["Authorization"] == "Bearer sk-test"


def test_no_key_no_auth_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as srv:
        b, _ = _backend(srv)
        assert b.generate([_msgs("hi")])[0].ok
        b.close()
    assert "Authorization" not in srv.headers[0]


def test_429_honours_retry_after_then_succeeds() -> None:
    with FakeOpenAI(retry_after="7") as srv:
        b, sleeps = _backend(srv)
        [g] = b.generate([_msgs("a [[429x2]]")])
        b.close()
    assert g.ok
    assert srv.attempts["a [[429x2]]"] == 3
    assert sleeps.waits == [7.0, 7.0]  # the server's wait, not the backoff schedule
    assert b.stats.retries == 2 and b.stats.retry_reasons == {"HTTP 429": 2}


def test_retry_after_is_capped() -> None:
    with FakeOpenAI(retry_after="9999") as srv:
        b, sleeps = _backend(srv, max_retry_after=30.0)
        assert b.generate([_msgs("a [[429x1]]")])[0].ok
        b.close()
    assert sleeps.waits == [30.0]


def test_5xx_exponential_backoff_with_jitter_and_cap() -> None:
    with FakeOpenAI() as srv:
        b, sleeps = _backend(srv, max_retries=5, backoff_base=1.0, backoff_max=4.0)
        [g] = b.generate([_msgs("b [[500x4]]")])
        b.close()
    assert g.ok and srv.attempts["b [[500x4]]"] == 5
    # equal jitter with rng=0.5: 0.75 * min(cap, base * 2**attempt)
    assert sleeps.waits == [0.75, 1.5, 3.0, 3.0]
    jittered = OpenAIBackend("http://x", "m", rng=lambda: 0.0, backoff_base=2.0)
    assert jittered.backoff(0) == 1.0 and jittered.backoff(3) == 8.0  # never below half
    jittered.close()


def test_gives_up_after_max_retries_as_a_failed_row() -> None:
    with FakeOpenAI() as srv:
        b, sleeps = _backend(srv, max_retries=2)
        gens = b.generate([_msgs("c [[always500]]"), _msgs("fine")])
        b.close()
    assert not gens[0].ok and "gave up after 3 attempts: HTTP 500" in gens[0].error
    assert gens[1].ok
    assert srv.attempts["c [[always500]]"] == 3 and len(sleeps.waits) == 2


def test_timeout_is_retried_then_succeeds() -> None:
    with FakeOpenAI(slow_s=1.0) as srv:
        b, _ = _backend(srv, timeout=0.2)
        t0 = time.perf_counter()
        [g] = b.generate([_msgs("d [[slow1]]")])
        b.close()
    assert g.ok and srv.attempts["d [[slow1]]"] == 2
    assert b.stats.retry_reasons == {"timeout": 1}
    assert time.perf_counter() - t0 < 1.0  # did not wait for the slow answer


def test_network_error_is_retried() -> None:
    sleeps = _Sleeps()
    b = OpenAIBackend("http://127.0.0.1:9", "m", max_retries=2, sleep=sleeps, connect_timeout=0.5)
    [g] = b.generate([_msgs("x")])
    b.close()
    assert not g.ok and "network error" in g.error and len(sleeps.waits) == 2


def test_malformed_bodies_fail_the_row_with_a_reason() -> None:
    with FakeOpenAI() as srv:
        b, sleeps = _backend(srv)
        gens = b.generate([_msgs("e [[malformed]]"), _msgs("f [[nochoices]]"), _msgs("ok")])
        b.close()
    assert "malformed response: body is not JSON" in gens[0].error
    assert "malformed response: no 'choices'" in gens[1].error
    assert gens[2].ok and not sleeps.waits  # not retried
    assert b.stats.failures == 2


def test_other_4xx_not_retried_and_auth_errors_stop_the_run() -> None:
    with FakeOpenAI() as srv:
        b, sleeps = _backend(srv)
        [g] = b.generate([_msgs("g [[always400]]")])
        assert not g.ok and g.error.startswith("HTTP 400") and srv.attempts["g [[always400]]"] == 1
        with pytest.raises(EndpointError, match="HTTP 401"):
            b.generate([_msgs("h [[always401]]")])
        b.close()
    assert not sleeps.waits


def test_concurrency_is_bounded_and_order_kept() -> None:
    with FakeOpenAI(delay_s=0.15, reply=lambda c: c.upper()) as srv:
        b, _ = _backend(srv, concurrency=3)
        t0 = time.perf_counter()
        gens = b.generate([_msgs(f"p{i}") for i in range(9)])
        took = time.perf_counter() - t0
        b.close()
    assert [g.text for g in gens] == [f"P{i}" for i in range(9)]
    assert srv.max_in_flight == 3
    assert took < 9 * 0.15 * 0.7  # ran in parallel


def test_vllm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from customer_r1.evaluation.backends import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'customer-r1\[vllm\]'"):
        VLLMBackend("some/model")
    with pytest.raises(BackendUnavailable):
        load_backend(model="some/model", engine="vllm")


def test_load_backend_flag_errors() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        load_backend()
    with pytest.raises(ValueError, match="exactly one"):
        load_backend(model="m", endpoint="http://x")
    with pytest.raises(ValueError, match="--model-name"):
        load_backend(endpoint="http://x")
    with pytest.raises(ValueError, match="unknown engine"):
        load_backend(model="m", engine="tgi")


def test_hf_backend_batched_left_padding_matches_single() -> None:
    from customer_r1.evaluation.backends import HFBackend

    tok = make_tokenizer()
    b = HFBackend(make_model(tok, seed=3), tok, batch_size=3)
    prompts = [_msgs("short"), _msgs("a much longer prompt about rice cookers " * 3), _msgs("mid one")]
    batched = b.generate(prompts, max_new_tokens=6)
    single = [b.generate([p], max_new_tokens=6)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(isinstance(g, Generation) and g.ok for g in batched)
    sampled = b.generate(prompts[:1], max_new_tokens=4, temperature=1.0, n=2)
    assert len(sampled) == 1 and len(sampled[0].texts) == 2


def test_hf_backend_from_pretrained(tmp_path) -> None:
    from customer_r1.evaluation.backends import HFBackend

    path = save_tiny(tmp_path / "tiny")
    b = load_backend(model=str(path), device="cpu", dtype="float32")
    assert isinstance(b, HFBackend) and b.name == str(path)
    assert b.chat_text(_msgs("x")).endswith("<|im_start|>assistant\n")
    assert b.generate([_msgs("x")], max_new_tokens=3)[0].ok


def test_the_environments_proxy_is_used_as_httpx_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """``https_proxy`` / ``http_proxy`` route the endpoint's requests, ``no_proxy`` hosts
    go direct, and no proxy variable means a direct connection."""
    import urllib3

    from customer_r1.evaluation.backends.openai_api import _proxy_for

    for var in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert _proxy_for("https://api.example.com/v1/chat/completions") is None
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1,.lan")
    assert _proxy_for("https://api.example.com/v1/chat/completions") == "http://proxy.internal:3128"
    assert _proxy_for("http://api.example.com/v1") is None  # only https has one
    assert _proxy_for("https://gpu.lan/v1") is None and _proxy_for("https://127.0.0.1:8000/v1") is None
    b = OpenAIBackend("https://api.example.com/v1", "m")
    try:
        assert isinstance(b._client(), urllib3.ProxyManager)
    finally:
        b.close()
    b = OpenAIBackend("http://127.0.0.1:8000/v1", "m")
    try:
        assert not isinstance(b._client(), urllib3.ProxyManager)
    finally:
        b.close()
