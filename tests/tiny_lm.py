"""A tiny chat LM built offline for tests: a byte-level BPE trained here and a
random 2-layer Llama. No downloads; building both takes well under a second."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    '{"rationale": "I want something cheap.", "action": {"type": "click", "name": "product.cheap"}}',
    '{"rationale": "Let me search.", "action": {"type": "input", "name": "search_box", '
    '"text": "rice cooker"}}',
    '{"rationale": "Done here.", "action": {"type": "terminate"}}',
    '{"action": {"type": "click", "name": "nav.cart"}}',
    '<button name="add_to_cart">Add to cart</button> <input name="search_box" type="text"/>',
    "<a name=\"product.cheap\">Cheap rice cooker $19</a> <a name=\"product.fancy\">Fancy $99</a>",
    "Persona: I am a careful shopper who compares prices and reads reviews before buying.",
    "History: click(search) input(search_box, 'rice cooker') click(product.fancy)",
    'He said \\"hello\\" and left. Escaped quotes \\" and backslashes \\\\ happen.',
]


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok.to_str()


def make_tokenizer() -> Any:
    """A fresh ``PreTrainedTokenizerFast`` with a ChatML-like template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token=None,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_model(tokenizer: Any, seed: int = 0, hidden: int = 32, layers: int = 2) -> Any:
    """A random tiny Llama sized to the tokenizer (fp32, eval mode, sdpa attention)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def save_tiny(path: Path, seed: int = 0) -> Path:
    """Write a tiny model + tokenizer directory loadable with ``from_pretrained``."""
    tok = make_tokenizer()
    model = make_model(tok, seed=seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def train_on(model: Any, tokenizer: Any, examples: list[tuple[list[dict], str]],
             steps: int = 200, lr: float = 1e-2) -> Any:
    """Memorise a few (prompt, target) pairs; loss on the target tokens only, the
    target tokenized after the prompt the way TRL does (prompt ids + content ids)."""
    import torch

    seqs = []
    for messages, target in examples:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(target + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + t_ids])
        labels = torch.tensor([[-100] * len(p_ids) + t_ids])
        seqs.append((ids, labels))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        ids, labels = seqs[step % len(seqs)]
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


# --------------------------------------------------------------------------- fake endpoint

VALID_REPLY = '{"rationale": "Nothing here for me.", "action": {"type": "terminate"}}'


class FakeOpenAI:
    """A scripted OpenAI-compatible ``/v1/chat/completions`` server on a local port.

    The last user message picks the behaviour through tags: ``[[429x2]]`` (two 429s
    with ``Retry-After``, then success), ``[[500x2]]``, ``[[slow1]]`` (first answer
    after ``slow_s`` seconds), ``[[malformed]]`` (200 with a non-JSON body),
    ``[[nochoices]]``, ``[[400]]``, ``[[401]]``, ``[[always500]]``. Otherwise it answers
    ``reply(content)`` after ``delay_s``. ``attempts`` counts requests per content.
    """

    def __init__(self, reply: Any = None, *, delay_s: float = 0.0, slow_s: float = 1.0,
                 retry_after: str = "7") -> None:
        import threading

        self.reply = reply or (lambda content: VALID_REPLY)
        self.delay_s = delay_s
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.attempts: dict[str, int] = {}
        self.headers: list[dict[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self._server: Any = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        import contextlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, h: Any) -> None:
        import json
        import re
        import time

        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length", 0))))
        content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        with self.lock:
            n = self.attempts.get(content, 0)
            self.attempts[content] = n + 1
            self.headers.append(dict(h.headers))
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            headers: dict[str, str] = {}
            status, payload = 200, None
            first_k = re.search(r"\[\[(\d{3})x(\d+)\]\]", content)
            always = re.search(r"\[\[always(\d{3})\]\]", content)
            slow = re.search(r"\[\[slow(\d+)\]\]", content)
            if first_k and n < int(first_k.group(2)):
                status = int(first_k.group(1))
            elif always:
                status = int(always.group(1))
            elif "[[malformed]]" in content:
                payload = b"<html>bad gateway</html>"
            elif "[[nochoices]]" in content:
                payload = b'{"object": "chat.completion", "choices": []}'
            elif slow and n < int(slow.group(1)):
                time.sleep(self.slow_s)
            elif self.delay_s:
                time.sleep(self.delay_s)
            if status == 429:
                headers["Retry-After"] = self.retry_after
            if payload is None:
                if status == 200:
                    text = self.reply(content)
                    choices = [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}]
                    payload = json.dumps({"object": "chat.completion", "choices": choices}).encode()
                else:
                    payload = json.dumps({"error": {"message": f"status {status}"}}).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            for key, val in headers.items():
                h.send_header(key, val)
            h.end_headers()
            h.wfile.write(payload)
        finally:
            with self.lock:
                self.in_flight -= 1


def one_thread() -> Any:
    """Context manager: torch on one thread. Tiny models are faster that way, and on a
    shared 2-core box several threads per process oversubscribe the CPU (100x slower)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def _ctx() -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return _ctx()


# --------------------------------------------------------------------------- built rows


def example_row(i: int, *, split: str = "test", session: str = "s1", action: Any = None,
                rationale: str | None = None, rationale_source: str | None = None,
                needs_rationale: bool = False, require_rationale: bool = True,
                user_text: str | None = None) -> dict[str, Any]:
    """One built-example row with every column of docs/architecture.md, by hand."""
    from customer_r1.actions import Action, format_target

    action = action or [Action.click("product.cheap"), Action.input("search_box", "rice cooker"),
                        Action.terminate()][i % 3]
    page = ["search_button", "product.cheap", "product.fancy", "search_box"]
    target = format_target(action, rationale or "", with_rationale=require_rationale)
    user = user_text or f"Persona: thrifty.\nHistory: step {i}\nPage: <a name=\"product.cheap\">$19</a>"
    return {
        "prompt": [{"role": "system", "content": "Predict the next action as JSON."},
                   {"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": target}],
        "example_id": f"{session}#{i}",
        "action_id": f"a{i}",
        "session_id": session,
        "user_id": "u1",
        "split": split,
        "step_index": i,
        "num_steps": 1000,
        "is_last_step": False,
        "action_json": action.to_json(),
        "action_type": action.type,
        "click_type": "product_link" if action.type == "click" else None,
        "semantic_id": action.name,
        "input_text": action.text,
        "rationale": rationale,
        "rationale_source": rationale_source,
        "needs_rationale": needs_rationale,
        "require_rationale": require_rationale,
        "persona_mode": "real",
        "persona_user_id": "u1",
        "session_outcome": "terminate",
        "page_names": page,
        "input_names": ["search_box"],
        "prompt_tokens": 50,
        "history_pages_dropped": 0,
        "page_truncated": False,
    }


def write_built(directory: Path, splits: dict[str, list[dict[str, Any]]]) -> Path:
    """``directory/{split}.parquet`` + a minimal ``build.json``."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows), directory / f"{split}.parquet")
    (directory / "build.json").write_text(json.dumps({"tokenizer": "tiny"}))
    return directory
