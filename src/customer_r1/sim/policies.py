"""Policies behind one protocol: observation, history and persona in; action and rationale out.

* :class:`WorldPolicy`: the world's own shopper of a persona (its traits read back from the
  survey, its own memory of the session, the world's motive tables): the true shopper.
* :class:`BaselinePolicy`: the page-kind baseline (how often each action was taken on this
  kind of page in training), sampled among the actions the page offers.
* :class:`RankerPolicy`: a trained checkpoint through the ranked predictor; the action is
  *sampled* from the ranked candidate distribution at a temperature (argmax would turn a
  population into one shopper), the rationale decoded greedily or sampled; the steps of
  concurrent sessions go through one batched forward.
* :class:`RandomPolicy`: a seeded monkey over the page's elements (a site's smoke test).
* :class:`EndpointPolicy`: an OpenAI-compatible server, free generation parsed by the
  project's parser; invalid output is retried, then returned as a failure that the runner
  records as an error step.

Every step gets its own seed (the session's seed and the step index), so a simulation is
reproducible whatever the concurrency or sharding. Model output is only ever parsed as
JSON into an :class:`Action`; it never reaches a shell, ``eval`` or a URL.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from customer_r1.actions import (
    Action,
    format_target,
    from_handle,
    handle_candidates,
    probs_from_handles,
    try_parse,
)
from customer_r1.domain import Observation, ShoppingData, Step, User
from customer_r1.errors import BadInput
from customer_r1.evaluation.baselines import page_kind
from customer_r1.sim.prompts import PromptBuilder, candidates_of
from customer_r1.sim.session import state_from_dict

if TYPE_CHECKING:
    from customer_r1.data.examples import BuildConfig
    from customer_r1.world.generate import World
    from customer_r1.world.pages import Page
    from customer_r1.world.persona import Traits
    from customer_r1.world.policy import Memory


@dataclass(frozen=True, slots=True)
class ActRequest:
    """One step to decide: the session so far and whose persona it is."""

    session_id: str
    observation: Observation
    history: Sequence[Step]
    persona: User
    seed: int


@dataclass(frozen=True, slots=True)
class PolicyAction:
    """A decision. ``action`` None: the policy failed (``info['error']`` says why, and
    ``raw`` holds what it produced); the runner records it as an error step."""

    action: Action | None
    rationale: str = ""
    raw: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """What the runner drives. ``act_batch`` decides the steps of concurrent sessions."""

    name: str

    def act(self, observation: Observation, history: Sequence[Step], persona: User, *,
            session_id: str = "", seed: int = 0) -> PolicyAction: ...

    def act_batch(self, requests: Sequence[ActRequest]) -> list[PolicyAction]: ...

    def end(self, session_id: str) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class BasePolicy:
    """``act`` in terms of ``act_batch`` (or the reverse), and no per-session state."""

    name = "policy"

    def act(self, observation: Observation, history: Sequence[Step], persona: User, *,
            session_id: str = "", seed: int = 0) -> PolicyAction:
        return self.act_batch([ActRequest(session_id, observation, history, persona, seed)])[0]

    def act_batch(self, requests: Sequence[ActRequest]) -> list[PolicyAction]:
        return [self.act_one(r) for r in requests]

    def act_one(self, request: ActRequest) -> PolicyAction:
        raise NotImplementedError(f"{type(self).__name__} overrides neither act_one nor act_batch")

    def end(self, session_id: str) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name}

    def close(self) -> None:
        return None


def sample_from(probs: Mapping[str, float], temperature: float, rng: np.random.Generator) -> str:
    """A key of ``probs`` drawn from ``p^(1/T)`` renormalised; T = 0 is the argmax (first
    of ties, in the mapping's order)."""
    keys = list(probs)
    p = np.asarray([max(0.0, float(probs[k])) for k in keys])
    if temperature <= 0 or p.sum() <= 0:
        return keys[int(np.argmax(p))]
    logp = np.log(np.maximum(p, 1e-300)) / temperature
    w = np.exp(logp - logp.max())
    w = np.where(p > 0, w, 0.0)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


# --------------------------------------------------------------------------- world


@dataclass
class _WorldSession:
    traits: Traits
    memory: Memory
    seen: int = 0


class WorldPolicy(BasePolicy):
    """The world's own policy as the shopper of each persona (see the module doc).

    It reads the shop's state from the observation's privileged ``extra`` (as WebShop's
    oracle does), so it runs on our shop only, in process or over HTTP.
    """

    name = "world"

    def __init__(self, world: World) -> None:
        from customer_r1.world.persona import read_traits

        self.world = world
        self._labels = {c.key: c.label for c in world.catalog.categories}
        self._read = read_traits
        self._sessions: dict[str, _WorldSession] = {}
        self._shops: dict[str, Any] = {}

    def traits_of(self, persona: User) -> Traits:
        from customer_r1.data.persona import render_survey

        try:
            return self._read(render_survey(persona.survey), self._labels)
        except (ValueError, KeyError) as exc:
            raise BadInput(f"the world's policy cannot read persona {persona.user_id}: {exc}",
                           f"user {persona.user_id}",
                           "the world's shopper needs a survey written by `world generate`; "
                           "use a model policy for other personas") from exc

    def _shop(self, observation: Observation) -> Any:
        from customer_r1.world.variants import SiteVariant

        v = (observation.extra or {}).get("variant")
        key = json.dumps(v, sort_keys=True)
        if key not in self._shops:
            base = self.world.shop
            self._shops[key] = base.with_variant(SiteVariant.from_dict(v)) if v else base
        return self._shops[key]

    def _page(self, shop: Any, state_dict: dict[str, Any]) -> tuple[Any, Page]:
        from customer_r1.world.pages import build_page

        state = state_from_dict(state_dict)
        return state, build_page(state, shop, self.world.page_size)

    def act_one(self, r: ActRequest) -> PolicyAction:
        from customer_r1.world.generate import _sample
        from customer_r1.world.persona import TraitTable
        from customer_r1.world.policy import Memory, Motive, PolicyContext, decide
        from customer_r1.world.rationale import write_rationale

        extra = r.observation.extra or {}
        if "state" not in extra:
            raise BadInput("the world's policy needs our shop's state in the observation",
                           "observation", "run it on `customer-r1 sim serve` or in process")
        shop = self._shop(r.observation)
        sess = self._sessions.get(r.session_id)
        if sess is None or sess.seen > len(r.history):
            sess = _WorldSession(self.traits_of(r.persona), Memory())
            self._sessions[r.session_id] = sess
        for st in r.history[sess.seen:]:  # the memory follows the observed history
            if st.action is None or not (st.observation.extra or {}).get("state"):
                continue
            s_k, p_k = self._page(shop, st.observation.extra["state"])  # type: ignore[index]
            motive = st.extra.get("motive")
            m = Motive(*motive.split(":", 1)) if motive else None
            sess.memory.update(s_k, p_k, st.action, m)
        sess.seen = len(r.history)
        state, page = self._page(shop, extra["state"])
        cat = self.world.catalog
        table = TraitTable.from_traits([sess.traits], list(cat.brands), [c.key for c in cat.categories])
        ctx = PolicyContext(shop, state, page, sess.memory, self.world.config.max_steps)
        dec = decide(ctx, table)
        rng = np.random.default_rng(np.random.SeedSequence([r.seed, 0x5011C7]))
        mi = _sample(dec.weights[0], rng)
        ai = _sample(dec.amat[mi], rng)
        motive, action = dec.motives[mi], dec.actions[ai]
        rationale = write_rationale(motive, action, ctx, sess.traits, rng)
        return PolicyAction(action, rationale, info={"motive": motive.key,
                                                     "prob": float(dec.action_probs()[0][ai])})

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


# --------------------------------------------------------------------------- baseline


class BaselinePolicy(BasePolicy):
    """Actions taken on each kind of page in training, sampled among those the page
    offers (``temperature`` 0: always the most frequent, the evaluation baseline)."""

    name = "baseline"

    def __init__(self, train: ShoppingData, temperature: float = 1.0) -> None:
        self.temperature = temperature
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        for s in train.sessions:
            for st in s.steps:
                if st.action is not None:
                    self.counts[page_kind(st.observation.url)][st.action.to_json()] += 1

    def act_one(self, r: ActRequest) -> PolicyAction:
        names, inputs = candidates_of(r.observation)
        names_set, inputs_set = set(names), set(inputs)
        offered: dict[str, float] = {}
        for key, n in self.counts.get(page_kind(r.observation.url), Counter()).most_common():
            a = Action.from_json(key)
            if a.type == "terminate" or (a.type == "click" and a.name in names_set) or (
                    a.type == "input" and a.name in inputs_set):
                offered[key] = float(n)
        if not offered:
            return PolicyAction(Action.terminate(), "nothing I know to do here")
        rng = np.random.default_rng(np.random.SeedSequence([r.seed, 0xBA5E]))
        key = sample_from(offered, self.temperature, rng)
        return PolicyAction(Action.from_json(key), "most frequent action here",
                            info={"prob": offered[key] / sum(offered.values())})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "temperature": self.temperature,
                "page_kinds": {k: sum(c.values()) for k, c in sorted(self.counts.items())}}


# --------------------------------------------------------------------------- random

#: What the random shopper types into text fields (``--words FILE`` replaces it).
WORDS = ("shoes", "coffee", "mug", "gift", "blue", "sale", "kettle", "backpack", "lamp", "organic",
         "black t-shirt", "wireless headphones", "book", "size 10", "under 20", "red dress", "zzzz",
         "ÄÖÜ ß", "1234", "a")


class RandomPolicy(BasePolicy):
    """A seeded monkey, to smoke-test a site before spending model time: each step clicks
    a random element of the page, or (``p_type``) types a random word from ``words`` into
    a random text field, or (``p_terminate``) leaves. It knows nothing but the page's names,
    so it finds what a careless shopper would: dead links, covered buttons, error pages.
    On other sites the browser's no-order, no-personal-data rule holds for it as for any
    policy (it is enforced below the policy)."""

    name = "random"

    def __init__(self, words: Sequence[str] = WORDS, *, p_type: float = 0.25,
                 p_terminate: float = 0.03) -> None:
        self.words = tuple(w for w in words if w.strip()) or WORDS
        self.p_type = p_type
        self.p_terminate = p_terminate

    def act_one(self, r: ActRequest) -> PolicyAction:
        rng = np.random.default_rng(np.random.SeedSequence([r.seed, 0x4A4D]))
        names, inputs = candidates_of(r.observation)
        fields = set(inputs)
        # the page's elements: not the containers whose names prefix others' (regions, selects)
        regions = {n.rsplit(".", 1)[0] for n in names if "." in n}
        regions = {p for n in regions for p in _prefixes(n)}
        names = [n for n in names if n not in regions or n in fields]
        clicks = [n for n in names if n not in fields]
        if not names or rng.random() < self.p_terminate:
            return PolicyAction(Action.terminate(), "random: leaving", info={"prob": self.p_terminate})
        if inputs and (not clicks or rng.random() < self.p_type):
            word = self.words[int(rng.integers(len(self.words)))]
            name = inputs[int(rng.integers(len(inputs)))]
            return PolicyAction(Action.input(name, word), f"random: typing {word!r}",
                                info={"prob": 1.0 / (len(inputs) * len(self.words))})
        name = clicks[int(rng.integers(len(clicks)))]
        return PolicyAction(Action.click(name), "random: clicking", info={"prob": 1.0 / len(clicks)})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "words": len(self.words), "p_type": self.p_type,
                "p_terminate": self.p_terminate}


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


# --------------------------------------------------------------------------- checkpoint


def checkpoint_hash(path: str | Path) -> str:
    """sha256 over a checkpoint's weight and config files (names and bytes)."""
    h = hashlib.sha256()
    p = Path(path)
    for f in sorted(p.iterdir()) if p.is_dir() else []:
        if f.is_file() and (f.suffix in (".safetensors", ".bin", ".json") or f.name.endswith(".jinja")):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


class RankerPolicy(BasePolicy):
    """A trained checkpoint, valid by construction (see the module doc)."""

    name = "model"

    def __init__(self, model: str | Path, build: BuildConfig, users: Mapping[str, User], *,
                 temperature: float = 1.0, rationale: str = "sample",
                 rationale_temperature: float = 1.0, device: str = "auto", dtype: str = "auto",
                 max_rationale_tokens: int = 96) -> None:
        from customer_r1.data.tokens import TokenCounter
        from customer_r1.evaluation.backends.hf import HFBackend
        from customer_r1.evaluation.ranking import Ranker

        if rationale not in ("greedy", "sample"):
            raise ValueError(f"rationale must be greedy or sample, got {rationale!r}")
        self.model_path = str(model)
        backend = HFBackend.from_pretrained(model, dtype=dtype, device=device)
        self.ranker = Ranker.from_backend(backend, max_rationale_tokens=max_rationale_tokens)
        counter = TokenCounter(backend.tokenizer) if build.token_budget is not None else None
        self.prompts = PromptBuilder(build, users, counter)
        self.temperature = temperature
        self.rationale = rationale
        self.rationale_temperature = rationale_temperature
        self.build = build

    def act_batch(self, requests: Sequence[ActRequest]) -> list[PolicyAction]:
        prompts, pages, names = [], [], []
        for r in requests:
            prompts.append(self.prompts.messages(r.session_id, r.persona.user_id, r.history, r.observation))
            cands = candidates_of(r.observation)
            names.append(cands[0])
            pages.append(handle_candidates(*cands) if self.prompts.handles else cands)
        with_r = self.prompts.with_rationale
        preds = _rank_batch(self.ranker, prompts, pages, [r.seed for r in requests], with_r,
                            self.rationale, self.rationale_temperature)
        out = []
        for r, pred, page in zip(requests, preds, names, strict=True):
            rng = np.random.default_rng(np.random.SeedSequence([r.seed, 0xAC7]))
            probs = probs_from_handles(pred.candidate_probs, page) if self.prompts.handles \
                else pred.candidate_probs
            key = sample_from(probs, self.temperature, rng)
            action = Action.from_json(key)
            out.append(PolicyAction(action, pred.rationale or "",
                                    info={"prob": float(probs[key]),
                                          "argmax": max(probs, key=probs.get)}))
        return out

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": self.name, "checkpoint": self.model_path,
                "checkpoint_sha256": checkpoint_hash(self.model_path),
                "temperature": self.temperature, "rationale": self.rationale,
                "rationale_temperature": self.rationale_temperature,
                "build": {k: v for k, v in asdict(self.build).items() if k not in ("extra",)}}


def _rank_batch(ranker: Any, prompts: list[list[dict[str, str]]], pages: list[tuple[list[str], list[str]]],
                seeds: list[int], with_rationale: bool, rationale: str, temperature: float) -> list[Any]:
    """The ranked predictions of several steps, batched when the ranker can."""
    from customer_r1.evaluation import ranking

    if hasattr(ranker, "predict_batch") and hasattr(ranking, "RankRequest"):
        reqs = [ranking.RankRequest(prompt=p, page_names=n, input_names=i,
                                    require_rationale=with_rationale, seed=s)
                for p, (n, i), s in zip(prompts, pages, seeds, strict=True)]
        return ranker.predict_batch(reqs, rationale=rationale, rationale_temperature=temperature)
    if rationale == "sample":
        raise BadInput("sampled rationales need the batched ranker", "--rationale", "use greedy")
    return [ranker.predict(p, n, i, require_rationale=with_rationale)
            for p, (n, i) in zip(prompts, pages, strict=True)]


# --------------------------------------------------------------------------- endpoint


class EndpointPolicy(BasePolicy):
    """An OpenAI-compatible endpoint: generate, parse, retry what does not parse.

    Two ways to drive it, with the same decisions for the same prompts: ``act_batch`` (one
    round of requests for the steps of every session in flight) and ``submit`` (one step's
    request, answered by a future), which the runner uses to let every session advance on
    its own with up to ``--concurrency`` requests in flight (see :mod:`customer_r1.sim.runner`).
    """

    name = "endpoint"

    def __init__(self, backend: Any, build: BuildConfig, users: Mapping[str, User], *,
                 temperature: float = 1.0, retries: int = 2, max_new_tokens: int = 256,
                 counter: Any = None) -> None:
        self.backend = backend
        self.prompts = PromptBuilder(build, users, counter)
        self.temperature = temperature
        self.retries = max(0, retries)
        self.max_new_tokens = max_new_tokens
        self.build = build
        self.invalid = 0  # outputs that did not parse (each retried or failed)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _names(self, request: ActRequest) -> list[str] | None:
        """The page's names, when the model writes handles that must be turned into them."""
        return candidates_of(request.observation)[0] if self.prompts.handles else None

    def _read(self, g: Any, names: list[str] | None,
              attempt: int) -> tuple[PolicyAction | None, tuple[str, str]]:
        """A generation as a decision, or (None, (why, raw)) when it must be retried."""
        if not g.ok:
            return None, (g.error or "request failed", "")
        pred, why = try_parse(g.text, require_rationale=self.prompts.with_rationale)
        if pred is None:
            with self._lock:
                self.invalid += 1
            return None, (f"unparsable output: {why}", g.text or "")
        action = pred.action
        if names is not None:  # the model wrote handles; the site wants names
            action = from_handle(action, names)
        return PolicyAction(action, pred.rationale or "", raw=g.text or "",
                            info={"attempts": attempt + 1}), ("", "")

    def _failed(self, why: str, raw: str) -> PolicyAction:
        return PolicyAction(None, "", raw=raw[:2000], info={"error": why, "attempts": self.retries + 1})

    def act_batch(self, requests: Sequence[ActRequest]) -> list[PolicyAction]:
        prompts = [self.prompts.messages(r.session_id, r.persona.user_id, r.history, r.observation)
                   for r in requests]
        names = [self._names(r) for r in requests]
        out: list[PolicyAction | None] = [None] * len(requests)
        last: dict[int, tuple[str, str]] = {}
        todo = list(range(len(requests)))
        for attempt in range(self.retries + 1):
            gens = self.backend.generate([prompts[i] for i in todo], max_new_tokens=self.max_new_tokens,
                                         temperature=self.temperature)
            again = []
            for i, g in zip(todo, gens, strict=True):
                out[i], last[i] = self._read(g, names[i], attempt)
                if out[i] is None:
                    again.append(i)
            todo = again
            if not todo:
                break
        for i in todo:
            out[i] = self._failed(*last[i])
        return [o for o in out if o is not None]

    def submit(self, request: ActRequest) -> Future[PolicyAction]:
        """One step's decision, in the background: the prompt is built here (in the caller's
        thread), the requests, their retries and the parsing run in one of the policy's
        ``backend.concurrency`` threads, so at most that many requests are in flight."""
        prompt = self.prompts.messages(request.session_id, request.persona.user_id, request.history,
                                       request.observation)
        names = self._names(request)
        if self._pool is None:
            size = max(1, int(getattr(self.backend, "concurrency", 8)))
            self._pool = ThreadPoolExecutor(size, thread_name_prefix="sim-endpoint")
        return self._pool.submit(self._decide, prompt, names)

    def _decide(self, prompt: list[dict[str, str]], names: list[str] | None) -> PolicyAction:
        one = getattr(self.backend, "generate_one", None)
        last = ("", "")
        for attempt in range(self.retries + 1):
            if one is not None:
                g = one(prompt, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
            else:
                [g] = self.backend.generate([prompt], max_new_tokens=self.max_new_tokens,
                                            temperature=self.temperature)
            got, last = self._read(g, names, attempt)
            if got is not None:
                return got
        return self._failed(*last)

    def describe(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": self.name, "model_name": getattr(self.backend, "model_name", ""),
                "endpoint": getattr(self.backend, "url", ""), "temperature": self.temperature,
                "retries": self.retries, "invalid_outputs": self.invalid,
                "build": {k: v for k, v in asdict(self.build).items() if k not in ("extra",)}}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.backend.close()


def completion_of(action: Action, rationale: str, with_rationale: bool = True) -> str:
    """The target text a decision corresponds to (for traces)."""
    return format_target(action, rationale, with_rationale=with_rationale)
