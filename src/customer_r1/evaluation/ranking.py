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

Batches. A simulator running K sessions needs one step for all K at once
(:meth:`Ranker.predict_batch`, :class:`RankRequest`). The same pipeline runs on one
KV cache of B rows (``_RowCache``): every forward appends a ``[B, T]`` block in which
each row has its own tokens (right-padded, pads masked out) at its own positions, and
a 4D mask lets each row see only its own cache columns, so a row may leave holes (its
cropped rationale prefix) that other rows do not. The rationale and input-text loops
then cost one ``[B, 1]`` forward per token for all rows, each row's candidate suffixes
are packed into one block with the segment mask of ``packed``, and the scoring block
is cropped off after each forward. Greedy results equal :meth:`Ranker.predict`'s up to
float rounding. Sampled rationales use one generator per request, so a request's
sample depends on its seed, not on the other requests sharing its batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from customer_r1.actions import Action, format_target, handle_candidates

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


#: How :meth:`Ranker.predict_batch` writes each rationale.
BatchRationale = Literal["greedy", "sample"]


@dataclass(slots=True)
class RankRequest:
    """One example (one policy step) for :meth:`Ranker.predict_batch`."""

    prompt: Sequence[Mapping[str, str]]
    page_names: Sequence[str] | None
    input_names: Sequence[str] | None
    require_rationale: bool = True
    #: Seeds this request's own sampler (``rationale="sample"`` only), so its rationale
    #: does not depend on which other requests share the batch.
    seed: int = 0

    @classmethod
    def coerce(cls, req: RankRequest | Mapping[str, Any]) -> RankRequest:
        """A request, or a built-example row (``prompt``, ``page_names``, ``input_names``,
        ``require_rationale`` and an optional ``seed`` column)."""
        if isinstance(req, RankRequest):
            return req
        names, inputs = req.get("page_names"), req.get("input_names")
        if req.get("name_handles"):  # ``--compress handles``: rank in handle space
            names, inputs = handle_candidates(names, inputs)
        return cls(req["prompt"], names, inputs,
                   bool(req.get("require_rationale", True)), int(req.get("seed", 0) or 0))


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
        max_batch_tokens: int = 16384,
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
        #: :meth:`predict_batch` splits a batch so rows x longest prompt stays under this
        #: (activations and KV cache grow with the padded batch, not with the real tokens),
        #: and bounds rows x tokens of a scoring forward (its logits: that x vocabulary).
        self.max_batch_tokens = max(1, max_batch_tokens)
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
        return _chunk_lengths([len(s) for s in suffixes], self.max_packed_tokens)

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
            return _only_candidate(cands[0], rationale, require_rationale, closed)
        final, scores = self._rank(p_ids, cache, next_logp, cands, rationale, require_rationale)
        return _ranked(final, scores, rationale, require_rationale, closed)

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

    # ------------------------------------------------------------- batched steps

    def predict_batch(
        self,
        requests: Sequence[RankRequest | Mapping[str, Any]],
        *,
        rationale: BatchRationale = "greedy",
        rationale_temperature: float = 1.0,
    ) -> list[RankedPrediction]:
        """Rank many examples at once (one policy step of many concurrent sessions).

        ``rationale="greedy"`` gives, per request, what :meth:`predict` gives with
        ``rationale_samples=0`` (up to float rounding of padded batched kernels);
        ``"sample"`` writes one rationale per request drawn at ``rationale_temperature``
        from a generator seeded with the request's ``seed`` alone, then ranks the
        candidates given it exactly as the greedy path does. The ranker's own
        ``rationale_samples``, ``temperature`` and ``seed`` are not used here.

        Why batch: on a small CPU model a forward of a few tokens costs mostly fixed
        overhead, and the token-by-token loops (rationale, input texts) are most of the
        forwards; one ``[B, 1]`` forward per decoding step serves all B requests, and
        the candidates of all rows are scored in one packed forward. The prompts are
        compute-bound and gain nothing from batching on a CPU (they run one forward per
        row there, see ``_RowCache.start``), so they bound the speed-up. Requests are
        sorted by prompt length and split so rows x longest prompt stays under
        ``max_batch_tokens``; results come back in the order given. Attention kernels
        that take no 4D mask (flash-attention) and sliding-window caches fall back to
        one request at a time, with the same semantics.
        """
        if rationale not in ("greedy", "sample"):
            raise ValueError(f"rationale must be 'greedy' or 'sample', got {rationale!r}")
        if rationale == "sample" and not rationale_temperature > 0:
            raise ValueError(f"rationale_temperature must be > 0, got {rationale_temperature}")
        import torch

        reqs = [RankRequest.coerce(r) for r in requests]
        out: list[RankedPrediction | None] = [None] * len(reqs)
        with torch.inference_mode():
            p_ids = [self.prompt_ids(r.prompt) for r in reqs]
            if not self._batchable:
                for i, r in enumerate(reqs):
                    out[i] = self._predict_one(r, p_ids[i], rationale, rationale_temperature)
            else:
                for group in _length_groups([len(p) for p in p_ids], self.max_batch_tokens):
                    preds = self._predict_group([reqs[i] for i in group], [p_ids[i] for i in group],
                                                rationale, rationale_temperature)
                    for i, pred in zip(group, preds, strict=True):
                        out[i] = pred
        assert all(p is not None for p in out)
        return [p for p in out if p is not None]

    @property
    def _batchable(self) -> bool:
        """Whether the batched path applies: an attention kernel that takes arbitrary 4D
        masks, and full-attention cache layers (a sliding-window layer drops old columns,
        which the rows' column masks would no longer line up with)."""
        impl = getattr(self.model.config, "_attn_implementation", None) or "eager"
        layers = getattr(_new_cache(self.model), "layers", None) or []
        return impl in ("sdpa", "eager") and not any(getattr(x, "is_sliding", False) for x in layers)

    def _picker(self, mode: BatchRationale, temperature: float,
                seeds: Mapping[int, int]) -> Callable[[Sequence[int], Any], list[int]]:
        """``pick(rows, logp[len(rows), V]) -> token per row``: argmax, or Gumbel-max
        sampling at ``temperature`` with one generator per row (seeded with ``seeds[row]``)
        so a row's draws never depend on the other rows of the batch. Gumbel-max draws
        exactly from ``softmax(logp / T)`` and tends to the argmax as T -> 0."""
        import torch

        if mode == "greedy":
            return lambda rows, logp: logp.argmax(-1).tolist()
        dev = self.device
        gens = {r: torch.Generator(device=dev).manual_seed(int(s) % (1 << 64))  # any int
                for r, s in seeds.items()}

        def pick(rows: Sequence[int], logp: Any) -> list[int]:
            v = logp.shape[-1]
            u = torch.stack([torch.rand(v, generator=gens[r], device=dev) for r in rows])
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
            return (logp.float() / temperature + gumbel).argmax(-1).tolist()

        return pick

    def _predict_one(self, req: RankRequest, p_ids: Sequence[int], mode: BatchRationale,
                     temperature: float) -> RankedPrediction:
        """One request on a single-row cache (when not :attr:`_batchable`): the batched
        path's semantics with :meth:`predict`'s machinery and the same per-row sampler."""
        cands = build_candidates(req.page_names, req.input_names)
        cache = _new_cache(self.model)
        next_logp = self._forward(p_ids, cache)
        rationale: str | None = None
        closed = True
        if req.require_rationale:
            r_logp = self._forward(self.content_ids([RATIONALE_PREFIX])[0], cache)
            pick = self._picker(mode, temperature, {0: req.seed})
            gen: list[int] = []
            done: tuple[str, bool] | None = None
            for step in range(self.max_rationale_tokens):
                tok = pick([0], r_logp[None])[0]
                done = self._string_step(gen, tok)
                if done is not None:
                    break
                if step + 1 < self.max_rationale_tokens:
                    r_logp = self._forward([tok], cache)
            raw, closed = done or (self.tokenizer.decode(gen, skip_special_tokens=True), False)
            _crop(cache, len(p_ids))
            rationale = decode_json_string(raw).strip() or EMPTY_RATIONALE
        if len(cands) == 1:
            return _only_candidate(cands[0], rationale, req.require_rationale, closed)
        final, scores = self._rank(p_ids, cache, next_logp, cands, rationale, req.require_rationale)
        return _ranked(final, scores, rationale, req.require_rationale, closed)

    def _predict_group(self, reqs: Sequence[RankRequest], p_ids: Sequence[Sequence[int]],
                       mode: BatchRationale, temperature: float) -> list[RankedPrediction]:
        """The batched pipeline on one cache of ``len(reqs)`` rows (see :class:`_RowCache`):
        prompt + rationale prefix in one forward, the rationales decoded together, each
        row's common candidate prefix in one forward, every row's candidate suffixes in
        packed forwards, the input texts decoded together."""
        n = len(reqs)
        st = _RowCache(self, n)
        prefix = self.content_ids([RATIONALE_PREFIX])[0]
        want = [r.require_rationale for r in reqs]
        # Prompt and rationale prefix in one forward: the next-token log-probs after the
        # prompt (scoring when candidates share no prefix) and after the prefix.
        first = st.start(
            [list(p) + (prefix if w else []) for p, w in zip(p_ids, want, strict=True)],
            at=[[len(p) - 1, len(p) + len(prefix) - 1] if w else [len(p) - 1]
                for p, w in zip(p_ids, want, strict=True)],
        )
        prompt_logp = [f[0] for f in first]
        rationales: list[str | None] = [None] * n
        closed = [True] * n
        r_rows = [i for i in range(n) if want[i]]
        if r_rows:
            prompt_end = st.length
            pick = self._picker(mode, temperature, {i: reqs[i].seed for i in r_rows})
            raws = self._decode_rows(st, {i: first[i][1] for i in r_rows},
                                     self.max_rationale_tokens, pick)
            st.rewind(prompt_end, [len(p) for p in p_ids])
            for i in r_rows:  # the prefix leaves the context, as predict crops it
                st.hide(i, len(p_ids[i]), len(p_ids[i]) + len(prefix))
                raw, closed[i] = raws[i]
                rationales[i] = decode_json_string(raw).strip() or EMPTY_RATIONALE
            st.trim()

        cands = [build_candidates(r.page_names, r.input_names) for r in reqs]
        plans: list[_RowPlan | None] = [None] * n
        for i in range(n):
            if len(cands[i]) > 1:
                contents = [candidate_content(a, rationales[i], with_rationale=want[i])
                            for a in cands[i]]
                ids = self.content_ids(contents)
                lcp = min(common_prefix_len(ids), min(len(x) for x in ids) - 1)
                plans[i] = _RowPlan(ids[0][:lcp], [x[lcp:] for x in ids])
        ctx = st.extend([pl.prefix if pl else [] for pl in plans])
        ctx_logp = [ctx[i][0] if pl and pl.prefix else prompt_logp[i]
                    for i, pl in enumerate(plans)]
        scores = self._score_rows(st, plans, ctx_logp)
        texts = self._input_texts(st, plans, cands)

        preds: list[RankedPrediction] = []
        for i in range(n):
            if plans[i] is None:
                preds.append(_only_candidate(cands[i][0], rationales[i], want[i], closed[i]))
                continue
            final = [Action.input(a.name, texts[(i, k)]) if a.type == "input" and a.name is not None
                     else a for k, a in enumerate(cands[i])]
            preds.append(_ranked(final, scores[i], rationales[i], want[i], closed[i]))
        return preds

    def _decode_rows(self, st: _RowCache, first: Mapping[int, Any], max_tokens: int,
                     pick: Callable[[Sequence[int], Any], list[int]]) -> dict[int, tuple[str, bool]]:
        """Decode a JSON string body on each row of ``first`` (row -> next-token log-probs)
        until its closing quote, all rows in one ``[B, 1]`` forward per token; finished
        rows feed masked pads. (raw body, closed) per row, with :meth:`_greedy_string`'s
        stopping rules. The cache grows; the caller rewinds it."""
        import torch

        gen: dict[int, list[int]] = {i: [] for i in first}
        done: dict[int, tuple[str, bool]] = {}
        active = list(first)
        logp = torch.stack([first[i] for i in active]) if active else None
        for step in range(max_tokens):
            if not active:
                break
            still: list[int] = []
            toks: dict[int, int] = {}
            for i, tok in zip(active, pick(active, logp), strict=True):
                res = self._string_step(gen[i], tok)
                if res is None:
                    still.append(i)
                    toks[i] = tok
                else:
                    done[i] = res
            active = still
            if not active or step + 1 == max_tokens:
                break
            nxt = st.extend([[toks[i]] if i in toks else [] for i in range(st.rows)])
            logp = torch.stack([nxt[i][0] for i in active])
        for i in first:
            if i not in done:
                done[i] = (self.tokenizer.decode(gen[i], skip_special_tokens=True), False)
        return done

    def _score_rows(self, st: _RowCache, plans: Sequence[_RowPlan | None],
                    ctx_logp: Sequence[Any]) -> list[list[float]]:
        """Summed log-prob of every row's candidate suffixes after that row's context.

        Each forward appends one ``[B, Q]`` block: row r's block holds a chunk of its own
        suffixes packed one after the other, each attending to r's context and its own
        earlier tokens, positions restarting at r's context length (the batched form of
        :meth:`_score_packed`). The block is cropped off after every forward.

        A forward costs rows x longest block whatever the other rows hold, so the fewest
        forwards win: a row packs up to ``max_packed_tokens`` (as in :meth:`predict`),
        fewer if rows x tokens would pass ``max_batch_tokens``, which also bounds the
        logits (rows x tokens x vocabulary floats)."""
        import torch

        dev = self.device
        rows = [i for i, pl in enumerate(plans) if pl is not None]
        scores: list[list[float]] = [[] for _ in plans]
        if not rows:
            return scores
        cap = max(1, min(self.max_packed_tokens, self.max_batch_tokens // len(plans)))
        chunks: dict[int, list[list[int]]] = {}
        for i in rows:
            pl = plans[i]
            assert pl is not None
            sufs = pl.suffixes
            firsts = torch.tensor([s[0] for s in sufs], device=dev)
            scores[i] = [float(x) for x in ctx_logp[i][firsts].double().tolist()]
            chunks[i] = _chunk_lengths([len(s) for s in sufs], cap)
        ctx_len, ctx_pos = st.length, list(st.pos)
        for k in range(max(len(c) for c in chunks.values())):
            blocks: list[list[int]] = [[] for _ in plans]
            poss: list[list[int]] = [[] for _ in plans]
            segs: list[list[int]] = [[] for _ in plans]
            for i in rows:
                pl = plans[i]
                assert pl is not None
                if k >= len(chunks[i]):
                    continue
                for j in chunks[i][k]:
                    s = pl.suffixes[j]
                    blocks[i].extend(s)
                    poss[i].extend(range(ctx_pos[i], ctx_pos[i] + len(s)))
                    segs[i].extend([j] * len(s))
            logits = st.forward(blocks, poss, segments=segs).float()
            st.rewind(ctx_len, ctx_pos)
            q = logits.shape[1]
            tgt = torch.zeros((len(plans), q), dtype=torch.long)
            for i in rows:
                b = blocks[i]
                if len(b) > 1:
                    tgt[i, : len(b) - 1] = torch.tensor(b[1:])
            lse = torch.logsumexp(logits, dim=-1)
            tok_lp = (logits.gather(-1, tgt.to(dev)[..., None])[..., 0] - lse).tolist()
            for i in rows:
                pl = plans[i]
                assert pl is not None
                if k >= len(chunks[i]):
                    continue
                off = 0
                for j in chunks[i][k]:
                    m = len(pl.suffixes[j])
                    scores[i][j] += sum(tok_lp[i][off : off + m - 1])
                    off += m
        return scores

    def _input_texts(self, st: _RowCache, plans: Sequence[_RowPlan | None],
                     cands: Sequence[Sequence[Action]]) -> dict[tuple[int, int], str]:
        """Greedy text of every input candidate: round j decodes the j-th input candidate
        of every row together, then rewinds the cache to the rows' contexts."""
        todo: dict[int, list[int]] = {
            i: [k for k, a in enumerate(cands[i]) if a.type == "input"]
            for i, pl in enumerate(plans) if pl is not None
        }
        texts: dict[tuple[int, int], str] = {}
        ctx_len, ctx_pos = st.length, list(st.pos)
        greedy = self._picker("greedy", 1.0, {})
        for j in range(max((len(v) for v in todo.values()), default=0)):
            rows = {i: ks[j] for i, ks in todo.items() if len(ks) > j}
            blocks: list[list[int]] = [[] for _ in plans]
            for i, k in rows.items():
                pl = plans[i]
                assert pl is not None
                blocks[i] = list(pl.suffixes[k])
            nxt = st.extend(blocks)
            raws = self._decode_rows(st, {i: nxt[i][0] for i in rows}, self.max_text_tokens, greedy)
            st.rewind(ctx_len, ctx_pos)
            for i, k in rows.items():
                texts[(i, k)] = decode_json_string(raws[i][0])
        return texts


@dataclass(slots=True)
class _RowPlan:
    """One row's candidates after its context: the common token prefix, then suffixes."""

    prefix: list[int]
    suffixes: list[list[int]]


class _RowCache:
    """A KV cache of B rows that grow in lock-step blocks, each row on its own tokens.

    Every forward appends one ``[B, T]`` block: row r's real tokens left-aligned, pads
    after them. ``valid[r, c]`` says whether cache column c holds one of row r's real
    tokens; a row's queries see only its valid columns (holes are fine: attention does
    not care where a key sits, RoPE only about its position id), and ``pos[r]`` counts
    r's real tokens, which are its position ids. So each row computes what a single-row
    cache over its own tokens would. Pads attend to themselves only, so no row of the
    softmax is empty (an all-masked row gives NaN under sdpa, which the pad's keys would
    then carry into the cache).
    """

    #: Prompts as one forward per row (True) or one padded forward (False); None: per
    #: row on a CPU only (see :meth:`start`).
    per_row_prompts: bool | None = None

    def __init__(self, ranker: Ranker, rows: int) -> None:
        import torch

        self.ranker = ranker
        self.rows = rows
        self.cache = _growing_cache(ranker.model)
        self.valid = torch.zeros((rows, 0), dtype=torch.bool, device=ranker.device)
        self.pos = [0] * rows
        self.pad = ranker.tokenizer.pad_token_id or 0

    @property
    def length(self) -> int:
        return int(self.valid.shape[1])

    def forward(self, blocks: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], *,
                segments: Sequence[Sequence[int]] | None = None, keep: Any = 0) -> Any:
        """Append one block (row r: ``blocks[r]`` at ``positions[r]``); return the model's
        logits (``keep``: ``logits_to_keep``). With ``segments`` a token sees only the
        earlier tokens of its own segment in the block (packed scoring); else all of its
        row's earlier tokens. ``pos`` is not touched."""
        import torch

        r = self.ranker
        dev = r.device
        b = self.rows
        t = max(1, max(len(x) for x in blocks))
        lens = torch.tensor([len(x) for x in blocks], device=dev)
        ids = torch.tensor([list(x) + [self.pad] * (t - len(x)) for x in blocks], device=dev)
        col = torch.arange(t, device=dev)
        new_valid = col[None, :] < lens[:, None]
        pos = torch.tensor([list(p) + [0] * (t - len(p)) for p in positions], device=dev)
        kwargs: dict[str, Any] = {"position_ids": pos}
        # Plain causal attention needs no mask of ours: the model's own one is applied
        # (and sdpa runs its causal kernel, with no materialised [B, T, past + T] mask)
        # when every row sees all of the cache and its own earlier block tokens, i.e. on
        # an empty cache (right padding: a real token never sees the pads after it), or
        # with no holes in the cache and no pads in the block (one row, mostly).
        plain = segments is None and (
            (not self.length and all(list(p) == list(range(len(x)))
                                     for p, x in zip(positions, blocks, strict=True)))
            or (all(len(x) == t for x in blocks) and bool(self.valid.all())))
        if not plain:
            causal = col[None, :] <= col[:, None]
            if segments is None:
                block = causal.expand(b, t, t)
            else:
                pad_seg = [-1 - j for j in range(t)]  # unique: a pad sees itself only
                seg = torch.tensor([list(s) + pad_seg[len(s):] for s in segments], device=dev)
                block = (seg[:, :, None] == seg[:, None, :]) & causal
            allowed = torch.cat([self.valid[:, None, :].expand(b, t, self.length), block], dim=2)
            if r._bool_mask:  # sdpa: True = attend
                mask = allowed[:, None]
            else:  # eager adds the mask to the scores
                dtype = next(r.model.parameters()).dtype
                mask = torch.zeros(allowed.shape, dtype=dtype, device=dev)
                mask.masked_fill_(~allowed, torch.finfo(dtype).min)
                mask = mask[:, None]
            kwargs["attention_mask"] = mask
        out = r.model(input_ids=ids, **kwargs, **{r._cache_kw: self.cache}, use_cache=True,
                      logits_to_keep=keep)
        self.valid = torch.cat([self.valid, new_valid], dim=1)
        return out.logits

    def extend(self, blocks: Sequence[Sequence[int]],
               at: Sequence[Sequence[int]] | None = None) -> list[list[Any]]:
        """Append each row's tokens at its next positions; per row, the next-token
        log-probs (fp32) after each block index in ``at[r]`` (default: its last token;
        none for an empty block). No forward when every block is empty."""
        import torch

        if at is None:
            at = [[len(x) - 1] if x else [] for x in blocks]
        if not any(blocks):
            return [[] for _ in blocks]
        keep = sorted({j for js in at for j in js})
        where = {j: u for u, j in enumerate(keep)}
        dev = self.ranker.device
        logits = self.forward(
            blocks, [range(p, p + len(x)) for p, x in zip(self.pos, blocks, strict=True)],
            keep=torch.tensor(keep or [0], device=dev),
        )
        self.pos = [p + len(x) for p, x in zip(self.pos, blocks, strict=True)]
        rows = [r for r, js in enumerate(at) for _ in js]
        cols = [where[j] for js in at for j in js]
        if not rows:
            return [[] for _ in blocks]
        sel = torch.log_softmax(logits[rows, cols].float(), dim=-1)
        out: list[list[Any]] = []
        k = 0
        for js in at:
            out.append([sel[k + m] for m in range(len(js))])
            k += len(js)
        return out

    def start(self, blocks: Sequence[Sequence[int]],
              at: Sequence[Sequence[int]]) -> list[list[Any]]:
        """The first block (the prompts), as :meth:`extend` does.

        On a CPU every padded token costs as much as a real one, and prompts of
        different lengths pad a batch by a fifth or more; a separate forward per row
        is then cheaper, and the rows' caches are copied into one padded cache (the
        pads stay masked). Elsewhere (GPU) one padded forward is far cheaper than B."""
        import torch

        r = self.ranker
        per_row = self.per_row_prompts
        if per_row is None:
            per_row = r.device.type == "cpu"
        if self.length or self.rows == 1 or not per_row or not all(blocks):
            return self.extend(blocks, at)
        dev = r.device
        out: list[list[Any]] = []
        per_row: list[list[tuple[Any, Any]]] = []
        for x, js in zip(blocks, at, strict=True):
            cache = _new_cache(r.model)
            res = r.model(input_ids=torch.tensor([list(x)], device=dev), **{r._cache_kw: cache},
                          use_cache=True, logits_to_keep=torch.tensor(list(js), device=dev))
            logp = torch.log_softmax(res.logits[0].float(), dim=-1)
            out.append([logp[m] for m in range(len(js))])
            per_row.append([(e[0], e[1]) for e in cache])
        lens = [len(x) for x in blocks]
        width = max(lens)
        for layer, kv in enumerate(zip(*per_row, strict=True)):
            k0, v0 = kv[0]
            keys = k0.new_zeros((self.rows, k0.shape[1], width, k0.shape[3]))
            values = v0.new_zeros((self.rows, v0.shape[1], width, v0.shape[3]))
            for row, (k, v) in enumerate(kv):
                keys[row, :, : k.shape[2]] = k[0]
                values[row, :, : v.shape[2]] = v[0]
            self.cache.update(keys, values, layer)
        self.valid = torch.arange(width, device=dev)[None, :] < torch.tensor(lens, device=dev)[:, None]
        self.pos = lens
        return out

    def rewind(self, length: int, pos: Sequence[int]) -> None:
        """Crop the cache back to ``length`` columns and the rows' counters to ``pos``."""
        _crop(self.cache, length)
        self.valid = self.valid[:, :length]
        self.pos = list(pos)

    def hide(self, row: int, start: int, stop: int) -> None:
        """Take columns ``start:stop`` out of ``row``'s context (another row may still be
        using them, so they cannot be cropped)."""
        self.valid[row, start:stop] = False

    def trim(self) -> None:
        """Crop trailing columns that no row uses (after :meth:`hide`): a single row then
        has no holes, and its forwards need no mask of ours."""
        used = self.valid.any(dim=0).nonzero()
        last = int(used.max()) + 1 if used.numel() else 0
        if last < self.length:
            _crop(self.cache, last)
            self.valid = self.valid[:, :last]


def _growing_cache(model: Any) -> Any:
    """A cache for :class:`_RowCache`: a DynamicCache whose layers write into buffers with
    spare room instead of concatenating. A decoding step of B rows would otherwise copy
    the whole B-row cache in every layer (``torch.cat``): a third of a step's time for
    16 rows of 800 tokens on a CPU. A plain cache where the layer layout is not the one
    this knows (another transformers version, sliding-window layers)."""
    cache = _new_cache(model)
    layer_cls = _buffered_layer_class()
    layers = getattr(cache, "layers", None)
    if layer_cls is None or layers is None:
        return cache
    base = layer_cls.__bases__[0]
    if layers and all(type(layer) is base for layer in layers):
        cache.layers = [layer_cls() for _ in layers]
    elif not layers and getattr(cache, "layer_class_to_replicate", None) is base:
        cache.layer_class_to_replicate = layer_cls
    return cache


_BUFFERED: list[Any] = []


def _buffered_layer_class() -> Any:
    """``DynamicLayer`` with a growing buffer (built once, on first use: transformers is
    imported lazily), or None when this transformers has no ``DynamicLayer``."""
    if _BUFFERED:
        return _BUFFERED[0]
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        _BUFFERED.append(None)
        return None

    class BufferedLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        """``keys``/``values`` are views of buffers with ~25% spare room; ``update``
        writes the new tokens in place, ``crop`` (inherited) just shortens the views."""

        _kbuf: Any = None
        _vbuf: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self.get_seq_length()
            m = n + key_states.shape[-2]
            kb = self._kbuf
            fresh = (kb is None or m > kb.shape[-2] or kb.shape[:2] != key_states.shape[:2]
                     or (n and self.keys.data_ptr() != kb.data_ptr()))
            if fresh:  # no buffer yet, full, or the views were replaced (batch ops)
                shape = (*key_states.shape[:2], m + max(64, m // 4), key_states.shape[-1])
                kb = key_states.new_empty(shape)
                vb = value_states.new_empty((*shape[:3], value_states.shape[-1]))
                if n:
                    kb[..., :n, :] = self.keys
                    vb[..., :n, :] = self.values
                self._kbuf, self._vbuf = kb, vb
            self._kbuf[..., n:m, :] = key_states
            self._vbuf[..., n:m, :] = value_states
            self.keys = self._kbuf[..., :m, :]
            self.values = self._vbuf[..., :m, :]
            return self.keys, self.values

    _BUFFERED.append(BufferedLayer)
    return BufferedLayer


def _length_groups(lengths: Sequence[int], cap: int) -> list[list[int]]:
    """Indices sorted by length and cut so ``len(group) * longest <= cap`` (a single
    longer item gets a group of its own): similar lengths share a batch, so little of
    it is padding, and the padded batch stays bounded."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > cap:
            groups.append(cur)
            cur = []
        cur.append(i)
    if cur:
        groups.append(cur)
    return groups


def _chunk_lengths(lengths: Sequence[int], cap: int) -> list[list[int]]:
    """Indices grouped in order so each group sums to at most ``cap`` (a single longer
    item gets a group of its own)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    size = 0
    for i, n in enumerate(lengths):
        if cur and size + n > cap:
            groups.append(cur)
            cur, size = [], 0
        cur.append(i)
        size += n
    if cur:
        groups.append(cur)
    return groups


def _only_candidate(action: Action, rationale: str | None, with_rationale: bool,
                    closed: bool) -> RankedPrediction:
    """The prediction of a page with a single candidate (terminate): nothing to rank."""
    return RankedPrediction(
        action, format_target(action, rationale, with_rationale=with_rationale),
        rationale, {action.to_json(): 1.0}, {action.to_json(): 0.0}, closed,
    )


def _ranked(final: Sequence[Action], scores: Sequence[float], rationale: str | None,
            with_rationale: bool, closed: bool) -> RankedPrediction:
    """The prediction from scored candidates (input candidates carrying their text)."""
    probs = _softmax_by_key(final, scores)
    logprobs = {a.to_json(): s for a, s in zip(final, scores, strict=True)}
    best = final[max(range(len(final)), key=lambda i: scores[i])]
    completion = format_target(best, rationale, with_rationale=with_rationale)
    return RankedPrediction(best, completion, rationale, probs, logprobs, closed)


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
