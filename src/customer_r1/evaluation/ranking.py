"""Valid-by-construction prediction: rank the current page's actions by likelihood.

Free generation lets a small model copy a frequent name prefix or invent a name that
is not on the page. In ``ranked`` mode the answer can only be one of the page's
candidates: ``click(n)`` for every ``n`` in ``page_names``, ``input(n, text)`` for
every ``n`` in ``input_names``, and ``terminate``. With a local causal LM:

1. rationale format: force ``{"rationale": "`` and decode greedily until the JSON
   string's closing quote (escaped quotes skipped, length capped);
2. score every candidate by the summed log-probability of the target string
   ``actions.format_target`` would write for it, given the prompt (and rationale);
   input candidates are scored up to and including ``"text": "`` and their text is
   then decoded greedily until the closing quote;
3. probabilities are the softmax of the scores over the candidates; the argmax is the
   prediction, and the completion is built with ``format_target`` so it always parses.

Tokenization. Each candidate's assistant content is tokenized **whole**, on its own
(``add_special_tokens=False``), and appended to the separately tokenized chat prompt.
That is how TRL tokenizes a prompt/completion pair for SFT (prompt ids, then the
completion's ids), so each candidate is scored under the segmentation the model was
trained on; BPE merges across the rationale/action boundary (``.",`` is one token in
most vocabularies) are therefore handled for free. The shared context is the
prompt plus the longest common *token* prefix of all candidates' ids, so every
candidate is conditioned on the identical token sequence (the KV cache is exact) and
every token in which candidates differ is scored. Tokenizing prompt + prefix as one
string and splitting at a character offset was rejected: the split can fall inside a
merged token, hiding part of a candidate in the shared context.

Sharing work. One forward over the prompt fills a KV cache; the rationale is decoded
on it and then cropped off; one forward adds the common prefix; then all candidate
suffixes go through **one packed forward** (strategy ``packed``): the suffixes are
concatenated into one sequence with a 4D attention mask that lets each suffix see the
context and its own earlier tokens only, with positions restarting after the context.
Unlike expanding the cache to one row per candidate (strategy ``expand``, kept for
attention kernels that take no custom mask), the context's keys and values are never
copied, which matters at 40k-token prompts. ``naive`` (one full forward per
candidate) is the reference the other two are tested against.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from customer_r1.actions import Action, format_target

STRATEGIES = ("auto", "packed", "expand", "naive")
RATIONALE_PREFIX = '{"rationale": "'
#: Used when the model closes the rationale string at once: the format requires a
#: non-empty rationale and ranked mode must always produce a parseable completion.
EMPTY_RATIONALE = "(no rationale)"


@dataclass(slots=True)
class RankedPrediction:
    """The ranked answer for one example."""

    action: Action
    completion: str
    rationale: str | None
    #: canonical action JSON → probability (sums to 1); input keys carry the greedy text
    candidate_probs: dict[str, float]
    #: canonical action JSON → summed log-probability of the candidate's continuation
    logprobs: dict[str, float] = field(default_factory=dict)
    rationale_closed: bool = True


def build_candidates(page_names: Sequence[str] | None, input_names: Sequence[str] | None) -> list[Action]:
    """Every action the page allows, deduplicated in document order, terminate last."""
    out: list[Action] = []
    seen: set[tuple[str, str]] = set()
    # ``is None`` rather than ``or``: rows from pandas carry numpy arrays here.
    pages = () if page_names is None else page_names
    inputs = () if input_names is None else input_names
    for kind, names in (("click", pages), ("input", inputs)):
        for name in names:
            if not isinstance(name, str) or not name.strip() or (kind, name) in seen:
                continue
            seen.add((kind, name))
            out.append(Action.click(name) if kind == "click" else Action.input(name, ""))
    out.append(Action.terminate())
    return out


def candidate_content(action: Action, rationale: str | None, *, with_rationale: bool) -> str:
    """The assistant text scored for a candidate: the full target, or for an input the
    target up to and including ``"text": "`` (the text itself is decoded, not scored)."""
    full = format_target(action, rationale, with_rationale=with_rationale)
    if action.type != "input":
        return full
    tail = '""}}'
    assert action.text == "" and full.endswith(tail), full
    return full[: -len(tail) + 1]


def closing_quote(text: str) -> int | None:
    """Index of the first unescaped ``"`` in a JSON string body, else None."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    return None


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_json_string(raw: str) -> str:
    """The value of a JSON string body the model wrote; invalid escapes (``\\q``, a
    trailing backslash) lose their backslash instead of failing the row."""
    try:
        value = json.loads('"' + raw + '"', strict=False)
        if isinstance(value, str):
            return value
    except json.JSONDecodeError:
        pass
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and len(raw) >= i + 6 and _is_hex(raw[i + 2 : i + 6]):
            out.append(chr(int(raw[i + 2 : i + 6], 16)))
            i += 6
        else:
            i += 1  # drop the stray backslash, keep what follows
    return "".join(out)


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of token id lists."""
    if not seqs:
        return 0
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs[1:]):
            return i
    return n


def _new_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers
        return DynamicCache()


def _cache_kwarg(model: Any) -> str:
    """transformers 5.x calls the cache argument ``cache``; 4.x ``past_key_values``."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _crop(cache: Any, length: int) -> None:
    """Cut the cache back to ``length`` tokens (negative ``crop`` works on 4.x and 5.x)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class Ranker:
    """Ranked-mode predictor over a local HF causal LM (see the module doc)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        strategy: str = "auto",
        max_rationale_tokens: int = 192,
        max_text_tokens: int = 48,
        max_packed_tokens: int = 1024,
        rationale_samples: int = 0,
        temperature: float = 1.0,
        seed: int = 0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
        if strategy == "auto":
            impl = getattr(model.config, "_attn_implementation", None) or "eager"
            # flash-attention kernels take no arbitrary 4D mask
            strategy = "packed" if impl in ("sdpa", "eager") else "expand"
        self._bool_mask = getattr(model.config, "_attn_implementation", None) == "sdpa"
        self.model = model
        self.tokenizer = tokenizer
        self.strategy = strategy
        self.max_rationale_tokens = max_rationale_tokens
        self.max_text_tokens = max_text_tokens
        self.max_packed_tokens = max(1, max_packed_tokens)
        if rationale_samples < 0:
            raise ValueError(f"rationale_samples must be >= 0, got {rationale_samples}")
        if rationale_samples and not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling rationales, got {temperature}")
        self.rationale_samples = rationale_samples
        self.temperature = temperature
        self.seed = seed
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.stop_ids = {i for i in eos if i is not None}
        self._cache_kw = _cache_kwarg(model)
        model.eval()

    @classmethod
    def from_backend(cls, backend: Any, **kwargs: Any) -> Ranker:
        """Wrap an :class:`~customer_r1.evaluation.backends.HFBackend`'s model."""
        return cls(backend.model, backend.tokenizer, **kwargs)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # ---------------------------------------------------------------- tokenization

    def prompt_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def content_ids(self, contents: Sequence[str]) -> list[list[int]]:
        enc = self.tokenizer(list(contents), add_special_tokens=False)["input_ids"]
        return [list(x) for x in enc]

    # ---------------------------------------------------------------- model calls

    def _forward(self, ids: Sequence[int], cache: Any) -> Any:
        """Extend ``cache`` by ``ids``; return the log-probs of the next token (fp32)."""
        import torch

        past = cache.get_seq_length()
        inp = torch.tensor([list(ids)], device=self.device)
        pos = torch.arange(past, past + len(ids), device=self.device).unsqueeze(0)
        out = self.model(
            input_ids=inp, position_ids=pos, **{self._cache_kw: cache}, use_cache=True,
            logits_to_keep=1,
        )
        return torch.log_softmax(out.logits[0, -1].float(), dim=-1)

    def _string_step(self, gen: list[int], tok: int) -> tuple[str, bool] | None:
        """Add ``tok`` to a JSON string body being decoded into ``gen``; (raw body, closed)
        once it ends (a stop token, or the closing quote), else None."""
        if tok in self.stop_ids:
            return self.tokenizer.decode(gen, skip_special_tokens=True), False
        gen.append(tok)
        text = self.tokenizer.decode(gen, skip_special_tokens=True)
        end = closing_quote(text)
        return (text[:end], True) if end is not None else None

    def _sample_strings(self, cache: Any, next_logp: Any, k: int, max_tokens: int,
                        seed: int) -> list[tuple[str, bool]]:
        """Sample ``k`` JSON string bodies at ``self.temperature``, all rows in one batch
        on a copy of the cache per row; (raw body, closed) each. The cache comes back with
        one row; the caller crops it."""
        import torch

        gen = torch.Generator(device=self.device).manual_seed(seed)
        logp = next_logp.unsqueeze(0).expand(k, -1)
        past = cache.get_seq_length()
        cache.batch_repeat_interleave(k)
        toks: list[list[int]] = [[] for _ in range(k)]
        out: list[tuple[str, bool] | None] = [None] * k
        try:
            for step in range(max_tokens):
                probs = torch.softmax(logp.float() / self.temperature, dim=-1)
                picked = torch.multinomial(probs, 1, generator=gen)[:, 0].tolist()
                for r, tok in enumerate(picked):
                    if out[r] is None:
                        out[r] = self._string_step(toks[r], tok)
                if all(o is not None for o in out) or step + 1 == max_tokens:
                    break
                pos = torch.full((k, 1), past + step, device=self.device)
                res = self.model(input_ids=torch.tensor(picked, device=self.device)[:, None],
                                 position_ids=pos, **{self._cache_kw: cache}, use_cache=True,
                                 logits_to_keep=1)
                logp = torch.log_softmax(res.logits[:, -1].float(), dim=-1)
        finally:
            cache.batch_select_indices(torch.tensor([0], device=self.device))
        return [o if o is not None else
                (self.tokenizer.decode(t, skip_special_tokens=True), False)
                for o, t in zip(out, toks, strict=True)]

    def _greedy_string(self, cache: Any, next_logp: Any, max_tokens: int) -> tuple[str, bool]:
        """Greedy decode a JSON string body until its closing quote; (raw body, closed).
        The cache grows; the caller crops it."""
        gen: list[int] = []
        for step in range(max_tokens):
            tok = int(next_logp.argmax())
            done = self._string_step(gen, tok)
            if done is not None:
                return done
            if step + 1 < max_tokens:
                next_logp = self._forward([tok], cache)
        return self.tokenizer.decode(gen, skip_special_tokens=True), False

    def score_suffixes(self, cache: Any, next_logp: Any, suffixes: Sequence[Sequence[int]],
                       prefix_ids: Sequence[int] | None = None) -> list[float]:
        """Summed log-prob of each suffix after the cached context (whose next-token
        log-probs are ``next_logp``). The cache is left as it was. ``naive`` needs the
        context's ids (``prefix_ids``) because it recomputes them for every suffix."""
        if any(len(s) == 0 for s in suffixes):
            raise ValueError("every suffix needs at least one token")
        if self.strategy == "naive":
            if prefix_ids is None:
                raise ValueError("the naive strategy needs prefix_ids")
            return [self.full_sequence_logprob(prefix_ids, s) for s in suffixes]
        if self.strategy == "expand":
            return self._score_expand(cache, next_logp, suffixes)
        return self._score_packed(cache, next_logp, suffixes)

    def _chunks(self, suffixes: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices of suffixes grouped so each group has at most ``max_packed_tokens``
        tokens (a single longer suffix gets a group of its own)."""
        groups: list[list[int]] = []
        cur: list[int] = []
        size = 0
        for i, s in enumerate(suffixes):
            if cur and size + len(s) > self.max_packed_tokens:
                groups.append(cur)
                cur, size = [], 0
            cur.append(i)
            size += len(s)
        if cur:
            groups.append(cur)
        return groups

    def _score_packed(self, cache: Any, next_logp: Any, suffixes: Sequence[Sequence[int]]) -> list[float]:
        import torch

        ctx = cache.get_seq_length()
        dev = self.device
        dtype = next(self.model.parameters()).dtype
        scores = [0.0] * len(suffixes)
        for group in self._chunks(suffixes):
            ids: list[int] = []
            pos: list[int] = []
            seg: list[int] = []
            for k in group:
                s = suffixes[k]
                ids.extend(s)
                pos.extend(range(ctx, ctx + len(s)))
                seg.extend([k] * len(s))
            q = len(ids)
            seg_t = torch.tensor(seg, device=dev)
            idx = torch.arange(q, device=dev)
            allowed = (seg_t[:, None] == seg_t[None, :]) & (idx[None, :] <= idx[:, None])
            if self._bool_mask:  # sdpa: True = attend; a quarter of the memory of fp32
                mask = torch.ones((q, ctx + q), dtype=torch.bool, device=dev)
                mask[:, ctx:] = allowed
            else:  # eager adds the mask to the scores
                mask = torch.zeros((q, ctx + q), dtype=dtype, device=dev)
                mask[:, ctx:].masked_fill_(~allowed, torch.finfo(dtype).min)
            out = self.model(
                input_ids=torch.tensor([ids], device=dev),
                position_ids=torch.tensor([pos], device=dev),
                attention_mask=mask[None, None],
                **{self._cache_kw: cache},
                use_cache=True,
            )
            _crop(cache, ctx)
            logits = out.logits[0].float()
            lse = torch.logsumexp(logits, dim=-1)
            off = 0
            for k in group:
                s = suffixes[k]
                total = float(next_logp[s[0]])
                if len(s) > 1:
                    rows = torch.arange(off, off + len(s) - 1, device=dev)
                    tgt = torch.tensor(s[1:], device=dev)
                    total += float((logits[rows, tgt] - lse[rows]).sum())
                scores[k] = total
                off += len(s)
        return scores

    def _score_expand(self, cache: Any, next_logp: Any, suffixes: Sequence[Sequence[int]]) -> list[float]:
        import torch

        ctx = cache.get_seq_length()
        dev = self.device
        scores = [0.0] * len(suffixes)
        for group in self._chunks(suffixes):
            k = len(group)
            m = max(len(suffixes[i]) for i in group)
            pad = self.tokenizer.pad_token_id or 0
            ids = torch.full((k, m), pad, dtype=torch.long, device=dev)
            att = torch.zeros((k, ctx + m), dtype=torch.long, device=dev)
            att[:, :ctx] = 1
            for r, i in enumerate(group):
                s = suffixes[i]
                ids[r, : len(s)] = torch.tensor(s, device=dev)
                att[r, ctx : ctx + len(s)] = 1
            pos = torch.arange(ctx, ctx + m, device=dev).unsqueeze(0).expand(k, m)
            cache.batch_repeat_interleave(k)
            try:
                out = self.model(
                    input_ids=ids, attention_mask=att, position_ids=pos,
                    **{self._cache_kw: cache}, use_cache=True,
                )
            finally:
                cache.batch_select_indices(torch.tensor([0], device=dev))
                _crop(cache, ctx)
            logp = torch.log_softmax(out.logits.float(), dim=-1)
            for r, i in enumerate(group):
                s = suffixes[i]
                total = float(next_logp[s[0]])
                if len(s) > 1:
                    tgt = torch.tensor(s[1:], device=dev)
                    total += float(logp[r, torch.arange(len(s) - 1, device=dev), tgt].sum())
                scores[i] = total
        return scores

    def full_sequence_logprob(self, prefix_ids: Sequence[int], suffix: Sequence[int]) -> float:
        """Reference: one plain forward over prefix + suffix, no cache, summed log-prob
        of the suffix tokens."""
        import torch

        ids = torch.tensor([list(prefix_ids) + list(suffix)], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, use_cache=False).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        start = len(prefix_ids)
        rows = torch.arange(start - 1, start - 1 + len(suffix), device=self.device)
        return float(logp[rows, torch.tensor(list(suffix), device=self.device)].sum())

    # ---------------------------------------------------------------- prediction

    def predict(
        self,
        prompt: Sequence[Mapping[str, str]],
        page_names: Sequence[str] | None,
        input_names: Sequence[str] | None,
        *,
        require_rationale: bool = True,
    ) -> RankedPrediction:
        """Rank one example's candidates; the completion always parses."""
        import torch

        with torch.inference_mode():
            return self._predict(prompt, page_names, input_names, require_rationale)

    def _predict(self, prompt: Sequence[Mapping[str, str]], page_names: Sequence[str] | None,
                 input_names: Sequence[str] | None, require_rationale: bool) -> RankedPrediction:
        cands = build_candidates(page_names, input_names)
        p_ids = self.prompt_ids(prompt)
        cache = _new_cache(self.model)
        next_logp = self._forward(p_ids, cache)
        n_prompt = len(p_ids)
        if require_rationale and self.rationale_samples > 0:
            return self._predict_sampled(p_ids, cache, next_logp, cands)

        rationale: str | None = None
        closed = True
        if require_rationale:
            r_logp = self._forward(self.content_ids([RATIONALE_PREFIX])[0], cache)
            raw, closed = self._greedy_string(cache, r_logp, self.max_rationale_tokens)
            _crop(cache, n_prompt)
            rationale = decode_json_string(raw).strip() or EMPTY_RATIONALE

        if len(cands) == 1:  # only terminate: nothing to rank
            action = cands[0]
            return RankedPrediction(
                action, format_target(action, rationale, with_rationale=require_rationale),
                rationale, {action.to_json(): 1.0}, {action.to_json(): 0.0}, closed,
            )
        final, scores = self._rank(p_ids, cache, next_logp, cands, rationale, require_rationale)
        probs = _softmax_by_key(final, scores)
        logprobs = {a.to_json(): s for a, s in zip(final, scores, strict=True)}
        best = final[max(range(len(final)), key=lambda i: scores[i])]
        completion = format_target(best, rationale, with_rationale=require_rationale)
        return RankedPrediction(best, completion, rationale, probs, logprobs, closed)

    def _rank(self, p_ids: Sequence[int], cache: Any, next_logp: Any, cands: Sequence[Action],
              rationale: str | None, with_rationale: bool) -> tuple[list[Action], list[float]]:
        """Score every candidate after the cached prompt (and rationale); input candidates
        get their greedily decoded text. The cache is cropped back to the prompt."""
        n_prompt = cache.get_seq_length()
        contents = [candidate_content(a, rationale, with_rationale=with_rationale) for a in cands]
        ids = self.content_ids(contents)
        lcp = min(common_prefix_len(ids), min(len(x) for x in ids) - 1)
        if lcp > 0:
            next_logp = self._forward(ids[0][:lcp], cache)
        ctx = cache.get_seq_length()
        suffixes = [x[lcp:] for x in ids]
        scores = self.score_suffixes(cache, next_logp, suffixes,
                                     prefix_ids=list(p_ids) + ids[0][:lcp])

        # Texts for every input candidate, so every key is a complete action.
        final: list[Action] = []
        for a, suffix in zip(cands, suffixes, strict=True):
            if a.type != "input":
                final.append(a)
                continue
            t_logp = self._forward(suffix, cache)
            raw, _ = self._greedy_string(cache, t_logp, self.max_text_tokens)
            _crop(cache, ctx)
            assert a.name is not None
            final.append(Action.input(a.name, decode_json_string(raw)))
        _crop(cache, n_prompt)
        return final, scores

    # ------------------------------------------------- sampled-rationale marginal

    def _predict_sampled(self, p_ids: Sequence[int], cache: Any, prompt_logp: Any,
                         cands: Sequence[Action]) -> RankedPrediction:
        """Pick ``argmax_a (1/K) sum_k p(a | prompt, r_k)`` over K sampled rationales.

        Greedy decoding commits to one rationale token by token, and a motive written in
        several wordings loses to a rarer one whose wordings share their first tokens, so
        the greedy rationale is often not the most likely *reason*. Averaging the action
        distribution over sampled rationales estimates ``p(a | prompt)`` with the
        rationale as a latent variable: the decision rule that maximises expected exact
        match. The rationale returned is the sample that gives the chosen action the
        highest probability. Sampling is seeded from the prompt's tokens, so a step's
        prediction does not depend on the order or batching of the run.
        """
        n_prompt = len(p_ids)
        r_logp = self._forward(self.content_ids([RATIONALE_PREFIX])[0], cache)
        samples = self._sample_strings(cache, r_logp, self.rationale_samples,
                                       self.max_rationale_tokens, _prompt_seed(self.seed, p_ids))
        _crop(cache, n_prompt)
        # Identical samples are scored once and weighted by their count.
        counts: dict[tuple[str, bool], int] = {}
        for raw, closed in samples:
            key = (decode_json_string(raw).strip() or EMPTY_RATIONALE, closed)
            counts[key] = counts.get(key, 0) + 1
        total = sum(counts.values())
        marginal: dict[str, float] = {}
        actions: dict[str, Action] = {}
        per_rationale: list[tuple[str, bool, dict[str, float]]] = []
        for (rationale, closed), n in counts.items():
            if len(cands) == 1:
                final, probs = list(cands), {cands[0].to_json(): 1.0}
            else:
                final, scores = self._rank(p_ids, cache, prompt_logp, cands, rationale, True)
                probs = _softmax_by_key(final, scores)
            for a in final:
                actions.setdefault(a.to_json(), a)
            for k, v in probs.items():
                marginal[k] = marginal.get(k, 0.0) + v * n / total
            per_rationale.append((rationale, closed, probs))
        best_key = max(marginal, key=lambda k: marginal[k])
        rationale, closed, _ = max(per_rationale, key=lambda r: r[2].get(best_key, 0.0))
        best = actions[best_key]
        logprobs = {k: math.log(v) if v > 0 else float("-inf") for k, v in marginal.items()}
        return RankedPrediction(best, format_target(best, rationale, with_rationale=True),
                                rationale, marginal, logprobs, closed)


def _softmax_by_key(actions: Sequence[Action], scores: Sequence[float]) -> dict[str, float]:
    """Candidate probabilities keyed by canonical action JSON (duplicates summed)."""
    top = max(scores)
    weights = [math.exp(x - top) for x in scores]
    z = sum(weights)
    probs: dict[str, float] = {}
    for a, w in zip(actions, weights, strict=True):
        key = a.to_json()
        probs[key] = probs.get(key, 0.0) + w / z
    return probs


def _prompt_seed(seed: int, ids: Sequence[int]) -> int:
    """A per-example seed: the run's seed mixed with a stable hash of the prompt's ids."""
    import zlib
    from array import array

    data = array("I", ids).tobytes()  # 4-byte unsigned ids, native (little-endian) order
    return (seed * 1_000_003 + zlib.crc32(data)) % (2**63)
