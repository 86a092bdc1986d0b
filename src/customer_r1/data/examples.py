"""Sessions → next-action examples, exactly as Customer-R1 frames the task.

One example per step t: the prompt holds the persona, the history (earlier pages,
actions and rationales) and the current page; the target is
``{"rationale": r_t, "action": a_t}``. Every row also carries the ground truth as
plain columns, which reward functions and evaluators read (see docs/architecture.md).

Prompt styles. ``full`` and ``compact`` put persona, history and current page in one
user message (the paper's layout; ``compact`` has a short system message). ``chat``
writes the session as a conversation: one user message per page (the first also
holds the persona) and the shopper's earlier answers as assistant messages, so step
t's prompt plus its completion is a prefix of step t+1's prompt. That lets training
pack a whole session into one sequence (``training/packing.py``): every step's
context is computed once instead of once per later step.

Pages are tokenized once each (``tokens.TokenCounter.count_pages``) and prompts are
assembled from cached counts under a pluggable budget strategy (``budget.py``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined

from customer_r1.actions import Action, ClickTypeLookup, format_target, to_handle
from customer_r1.data.budget import CUT_SLACK, BudgetError, BudgetPlan, ExampleCosts, get_strategy
from customer_r1.data.compress import (
    check_compress,
    dedupe_furniture,
    lines_text,
    parse_compress,
    session_forms,
    session_forms_job,
    uses_handles,
)
from customer_r1.data.names import page_names
from customer_r1.data.persona import PersonaMode, build_personas
from customer_r1.data.tokens import PageCount, TokenCounter
from customer_r1.domain import Session, ShoppingData, Step

log = logging.getLogger(__name__)

RationaleMode = Literal["on", "off"]
#: A compressed chunk with this many page characters is parsed in worker processes.
PARALLEL_CHARS = 4_000_000
PROMPT_STYLES = ("full", "compact", "chat")
HISTORY_MARKER = "[page omitted to fit the context budget]"
CUT_MARKER = "[... rest of the page cut to fit the context budget]\n"
EMPTY_PAGE = "(empty page)"


@dataclass
class BuildConfig:
    """How examples are built. Every ablation of the paper is one field here."""

    persona_mode: PersonaMode = "real"
    rationale_mode: RationaleMode = "on"
    shuffle_seed: int = 0
    include_interview: bool = False
    #: Tokenizer path or Hub id (``smollm2``: the bundled SmolLM2 tokenizer); None with
    #: ``token_budget=None`` builds without counting tokens.
    tokenizer: str | None = "smollm2"
    token_budget: int | None = 65_536
    budget_strategy: str = "drop_oldest_pages"
    #: ``inside``: the persona counts against ``token_budget`` like everything else (the
    #: paper's single context limit); ``outside``: the budget is for the rest of the prompt
    #: and each persona comes on top, so a persona never displaces history pages, and with
    #: and without persona see the same history (a fair persona ablation at a short budget).
    persona_budget: Literal["inside", "outside"] = "inside"
    #: Keep at most this many earlier steps in the history (None: all, as in the paper).
    max_history_steps: int | None = None
    #: Show the pages of at most this many of the latest history steps; older steps keep
    #: their action and rationale only (None: as many pages as the budget allows). Full
    #: action history at a fraction of the tokens: what a small model with a short
    #: context needs to remember what it viewed, reviewed or chose earlier.
    max_history_pages: int | None = None
    #: ``full`` system message; ``compact`` for tiny models with short contexts; ``chat``:
    #: the session as a conversation, one user message per page (packable, see above).
    prompt_style: Literal["full", "compact", "chat"] = "full"
    #: Check estimated counts against the exact chat-template count: ``auto`` checks the
    #: first examples and falls back to checking all if any differ; ``all``; ``none``.
    exact_check: Literal["auto", "all", "none"] = "auto"
    #: Context compression strategies (``data/compress.py``): ``furniture``,
    #: ``history_diff``, ``trim_current``, any combination; empty: whole pages, the
    #: paper's oldest-page drop alone (today's prompts, byte for byte).
    compress: list[str] = field(default_factory=list)
    splits: list[str] | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_history_pages is not None and self.max_history_pages < 0:
            raise ValueError(f"max_history_pages must be >= 0, got {self.max_history_pages}")
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {self.prompt_style!r}")
        if self.persona_budget not in ("inside", "outside"):
            raise ValueError(f"persona_budget must be 'inside' or 'outside', got {self.persona_budget!r}")
        if self.rationale_mode not in ("on", "off"):
            raise ValueError(f"rationale_mode must be 'on' or 'off', got {self.rationale_mode!r}")
        if self.token_budget is not None and self.tokenizer is None:
            raise ValueError("a token budget needs a tokenizer (or set token_budget=None)")
        # Canonical order, as a list (build.json round-trips it equal to the config).
        given = parse_compress(self.compress) if isinstance(self.compress, str) else self.compress
        self.compress = list(check_compress(given))
        if uses_handles(self.compress) and self.prompt_style == "chat":
            raise ValueError("compress 'handles' needs prompt_style full or compact: chat prompts "
                             "repeat earlier answers, which name elements of pages shown without "
                             "handles")


# ---------------------------------------------------------------------------
# Prompt pieces. Each piece ends with "\n" and starts with a non-space character, so
# token counts of pieces add up to the count of the whole (see tokens.py).


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("customer_r1.data", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def system_prompt(style: str = "full", *, rationale: bool = True) -> str:
    name = {"full": "system.md.j2", "chat": "system-chat.md.j2"}.get(style, "system-compact.md.j2")
    return _templates().get_template(name).render(rationale=rationale).strip()


def page_piece(html: str) -> str:
    body = html.strip()
    return (body or EMPTY_PAGE) + "\n"


def persona_piece(text: str) -> str:
    return f"# Persona\n{text.strip()}\n"


def history_header_piece(n_history: int) -> str:
    return "# Session so far\n" if n_history else "# Session so far\n(this is the first step)\n"


def step_page_header(k: int) -> str:
    return f"## Step {k + 1}\nPage:\n"


def step_dropped_piece(k: int, style: str = "full") -> str:
    """A history step without its page: the marker, or (compact style) the header alone."""
    if style == "compact":
        return f"## Step {k + 1}\n"
    return f"## Step {k + 1}\nPage: {HISTORY_MARKER}\n"


def step_action_piece(step: Step, with_rationale: bool, handle: int | None = None) -> str:
    """An earlier step's action (and reason). ``handle``: ``--compress handles``, the acted
    element is on the current page under this handle, which the line says, so that a
    model writing handles can tell which of the page's elements it has used before."""
    assert step.action is not None
    here = "" if handle is None else f' (current page: name="{handle}")'
    text = f"Action: {step.action.to_json()}{here}\n"
    if with_rationale and step.rationale and step.rationale.strip():
        text += f"Reason: {' '.join(step.rationale.split())}\n"
    return text


def current_header_piece(t: int) -> str:
    return f"# Current page (step {t + 1})\n"


def chat_page_header(k: int) -> str:
    """Heads each page's user message in the ``chat`` style."""
    return f"# Page (step {k + 1})\n"


def chat_dropped_piece() -> str:
    """A ``chat`` history page dropped to fit the budget (its header stays)."""
    return f"{HISTORY_MARKER}\n"


# ---------------------------------------------------------------------------


@dataclass
class BuildStats:
    """What a build did, for build.json and the CLI summary."""

    examples: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    page_chars: int = 0
    pages_truncated: int = 0
    history_pages_dropped: int = 0
    #: Compressed histories only: steps shown by their action alone, and steps left out.
    history_steps_brief: int = 0
    history_steps_omitted: int = 0
    needs_rationale: int = 0
    exact_checked: int = 0
    exact_mismatches: int = 0
    template_overhead: int | None = None
    seconds: float = 0.0


class ExampleBuilder:
    """Turns sessions into example rows; holds the tokenizer, personas and cached counts."""

    def __init__(self, data: ShoppingData, config: BuildConfig, counter: TokenCounter | None = None):
        self.data = data
        self.config = config
        self.with_rationale = config.rationale_mode == "on"
        self.personas = build_personas(
            data.users,
            config.persona_mode,
            seed=config.shuffle_seed,
            include_interview=config.include_interview,
        )
        if counter is None and config.token_budget is not None:
            from customer_r1.data.tokens import load_tokenizer

            counter = TokenCounter(load_tokenizer(str(config.tokenizer)))
        self.counter = counter
        self.strategy = get_strategy(config.budget_strategy)
        self.chat = config.prompt_style == "chat"
        self.compress = frozenset(config.compress)
        #: ``--compress handles``: the current page's names and the target as handles.
        self.handles = uses_handles(config.compress)
        # The last page's names (see _names_of): a step's page is read for its prompt's
        # handle notes and again for its row.
        self._names_html: str | None = None
        self._names: tuple[list[str], list[str]] = ([], [])
        self._here: dict[str, int] = {}  # that page's names -> handles
        self.system = system_prompt(config.prompt_style, rationale=self.with_rationale)
        self._lines: dict[str, int] = {}  # token counts of compressed lines (see _line_counts)
        self._workers: Any = None  # page-parsing processes of compressed builds (_pool)
        self.stats = BuildStats()
        self._pair_overhead = 0
        # No budget: still count tokens when a tokenizer is given, but drop nothing.
        self._budget = config.token_budget if config.token_budget is not None else sys.maxsize
        self._persona_tokens: dict[str, int] = {}  # persona_budget=outside: each user's persona
        self._overhead = self._template_overhead() if counter is not None else 0
        self.stats.template_overhead = self._overhead
        self._check_all = config.exact_check == "all"
        self._checks_left = 8 if config.exact_check == "auto" else 0

    # -- token costs -------------------------------------------------------
    def _budget_of(self, session: Session) -> int:
        """The prompt budget of a session's examples: ``token_budget``, plus its persona's
        tokens when the persona comes on top (``persona_budget=outside``)."""
        if self.config.persona_budget == "inside" or self.config.token_budget is None or self.counter is None:
            return self._budget
        n = self._persona_tokens.get(session.user_id)
        if n is None:
            n = self._persona_tokens[session.user_id] = self._c(
                persona_piece(self.personas[session.user_id].text))
        return self._budget + n

    def _template_overhead(self) -> int:
        """Tokens the chat template adds around the two messages, measured once.

        The probe's contents start and end like real ones (system text; user text from
        "# Persona" to a final newline), so the template's seams tokenize the same way.
        """
        probe = persona_piece("x")
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": probe}]
        exact = self.counter.exact_prompt_tokens(messages)  # type: ignore[union-attr]
        base = exact - self._c(self.system) - self._c(probe)
        if self.chat:
            # Each earlier (assistant answer, next page) pair adds two messages' seams.
            answer = format_target(Action.terminate(), "x", with_rationale=self.with_rationale)
            page = chat_page_header(1) + page_piece("x")
            longer = [*messages, {"role": "assistant", "content": answer}, {"role": "user", "content": page}]
            exact2 = self.counter.exact_prompt_tokens(longer)  # type: ignore[union-attr]
            self._pair_overhead = exact2 - exact - self._c(answer) - self._c(page)
        return base

    def _c(self, text: str) -> int:
        assert self.counter is not None
        return self.counter.count(text)

    def _fixed_cost(self, session: Session, t: int, lo: int) -> int:
        """Tokens of everything but pages at step t (overhead added later)."""
        steps = session.steps
        persona = self.personas[session.user_id].text
        n = self._c(self.system) + self._c(persona_piece(persona))
        if self.chat:
            n += sum(self._c(chat_page_header(k)) for k in range(lo, t + 1))
            n += sum(self._c(self._target(steps[k])) for k in range(lo, t))
            return n + self._pair_overhead * (t - lo)
        n += self._c(history_header_piece(t - lo))
        for k in range(lo, t):
            n += self._c(self._action(session, t, k, self.with_rationale))
        n += self._c(current_header_piece(t))
        return n

    def _action(self, session: Session, t: int, k: int, with_rationale: bool) -> str:
        """Step ``k``'s action piece in step ``t``'s prompt: with ``handles``, the acted
        element's handle on step ``t``'s page when it is there."""
        step = session.steps[k]
        name = step.action.name if step.action is not None else None
        if not self.handles or name is None:
            return step_action_piece(step, with_rationale)
        self._names_of(session.steps[t].observation.html)
        return step_action_piece(step, with_rationale, self._here.get(name))

    def _names_of(self, html: str) -> tuple[list[str], list[str]]:
        """:func:`page_names` of a page, kept for the last page asked (keyed by its text,
        so a simulator's new page with an old session id and step is never stale)."""
        if html != self._names_html:
            self._names_html = html
            self._names = page_names(html)
            self._here = {n: i for i, n in enumerate(self._names[0])} if self.handles else {}
        return self._names

    def _dropped(self, k: int) -> str:
        return chat_dropped_piece() if self.chat else step_dropped_piece(k, self.config.prompt_style)

    def _history_full(self, k: int, count: PageCount) -> int:
        """Tokens of a history step shown with its page (beyond the fixed part)."""
        return count.tokens if self.chat else self._c(step_page_header(k)) + count.tokens

    def _target(self, step: Step, handles_of: Sequence[str] | None = None) -> str:
        """The assistant's answer for a step: the example's completion. With
        ``handles_of`` (the step's page names, ``--compress handles``) the element is
        written as its handle on that page."""
        assert step.action is not None
        rationale = " ".join(step.rationale.split()) if step.rationale and step.rationale.strip() else ""
        action = step.action if handles_of is None else to_handle(step.action, handles_of)
        return format_target(action, rationale, with_rationale=self.with_rationale)

    def _history_start(self, t: int) -> int:
        m = self.config.max_history_steps
        return 0 if m is None else max(0, t - m)

    # -- building ------------------------------------------------------------
    def iter_rows(
        self, sessions: Sequence[Session], progress: Callable[[int], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows for the given sessions, tokenizing their pages in parallel chunks."""
        chunk: list[Session] = []
        n_pages = 0
        try:
            for s in sessions:
                _check_session(s)
                chunk.append(s)
                n_pages += len(s.steps)
                if n_pages >= 64:
                    yield from self._rows_for_chunk(chunk, progress)
                    chunk, n_pages = [], 0
            if chunk:
                yield from self._rows_for_chunk(chunk, progress)
        finally:
            self.close()

    def _rows_for_chunk(
        self, sessions: list[Session], progress: Callable[[int], None] | None
    ) -> Iterator[dict[str, Any]]:
        if self.compress:
            yield from self._compressed_chunk(sessions, progress)
            return
        pieces = [page_piece(st.observation.html) for s in sessions for st in s.steps]
        self.stats.pages += len(pieces)
        self.stats.page_chars += sum(len(p) for p in pieces)
        counts = self._count(pieces, [(s, t) for s in sessions for t in range(len(s.steps))], progress)
        i = 0
        for s in sessions:
            n = len(s.steps)
            yield from self._session_rows(s, pieces[i : i + n], counts[i : i + n])
            i += n

    def _count(
        self,
        pieces: list[str],
        where: list[tuple[Session, int]],
        progress: Callable[[int], None] | None = None,
    ) -> list[PageCount | None]:
        """Token counts of page pieces; ``where[i]`` is (session, step) of ``pieces[i]``.

        A page may need cutting only when it is the current page and does not fit beside
        the fixed part even with every history page dropped: only those keep cut points.
        """
        if self.counter is None:
            if progress:
                progress(len(pieces))
            return [None] * len(pieces)
        slack: list[int] = []  # the room left for the page: budget - everything else
        for s, t in where:
            lo = self._history_start(t)
            dropped = sum(self._c(self._dropped(k)) for k in range(lo, t))
            slack.append(self._budget_of(s) - (self._fixed_cost(s, t, lo) + dropped + self._overhead))
        return list(
            self.counter.count_pages(pieces, lambda i, n: n > slack[i] - 64, progress=progress)
        )

    # -- compressed prompts (data/compress.py) -------------------------------
    def _compressed_chunk(
        self, sessions: list[Session], progress: Callable[[int], None] | None
    ) -> Iterator[dict[str, Any]]:
        """Rows with compressed pages: every page parsed once (in worker processes when
        there are many characters to parse), every distinct line tokenized once
        (furniture repeats across a session), budgets planned from line counts."""
        jobs = [(tuple(self.config.compress), [st.observation.html for st in s.steps],
                 [st.action.name if st.action is not None else None for st in s.steps]) for s in sessions]
        chars = sum(len(h) for _, pages, _ in jobs for h in pages)
        pool = self._pool() if chars >= PARALLEL_CHARS else None
        forms = list(pool.map(session_forms_job, jobs)) if pool is not None else \
            [session_forms(*j) for j in jobs]
        self.stats.pages += sum(len(s.steps) for s in sessions)
        self.stats.page_chars += sum(len(h.strip()) + 1 for _, pages, _ in jobs for h in pages)
        if self.counter is not None:
            self._line_counts(ln for hist, cur in forms for lines in (*hist, *cur) for ln in lines)
        if progress:
            progress(sum(len(s.steps) for s in sessions))
        for s, (hist, cur) in zip(sessions, forms, strict=True):
            persona = self.personas[s.user_id]
            for t, step in enumerate(s.steps):
                lo = self._history_start(t)
                messages, plan = self._compressed_messages(s, t, lo, hist, cur[t], persona.text)
                prompt_tokens = None
                if plan is not None:
                    prompt_tokens = self._verify_count(messages, plan, f"{s.session_id}#{t}",
                                                       self._budget_of(s))
                yield self._row(s, t, step, messages, persona.source_user_id, s.outcome, plan, prompt_tokens)
        if len(self._lines) > 200_000:
            self._lines.clear()

    def _pool(self) -> Any:
        """Worker processes that parse pages (spawned: a parent holding a tokenizer or
        torch must not fork), started on first use and shut down by :meth:`close`."""
        if self._workers is None and (os.cpu_count() or 1) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._workers = ProcessPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                                mp_context=multiprocessing.get_context("spawn"))
        return self._workers

    def close(self) -> None:
        """Stop the page-parsing workers, if any were started."""
        if self._workers is not None:
            self._workers.shutdown()
            self._workers = None

    def _line_counts(self, lines: Any) -> None:
        """Tokenize the lines not counted yet, in batches (each counted as it is written,
        with its newline)."""
        assert self.counter is not None
        missing = list(dict.fromkeys(ln for ln in lines if ln not in self._lines))
        counts = self.counter.count_many([ln + "\n" for ln in missing])
        self._lines.update(zip(missing, counts, strict=True))

    def _page_cost(self, lines: Sequence[str]) -> int:
        """Tokens of a compressed page piece (references and other new lines counted here)."""
        if not lines:
            return self._c(EMPTY_PAGE + "\n")
        n = 0
        for ln in lines:
            c = self._lines.get(ln)
            if c is None:
                c = self._c(ln + "\n")
            n += c
        return n

    def _compressed_costs(self, session: Session, t: int, lo: int, hist: Any, cur: list[str]) -> ExampleCosts:
        """Costs with each history page as compressed (before furniture: an upper bound,
        as references only shorten lines). A compressed history (``history_diff``,
        not chat) may also drop the oldest steps' reasons and then the oldest steps."""
        ks = range(lo, t)
        cut = self._c(CUT_MARKER)
        if self.chat or "history_diff" not in self.compress:
            return ExampleCosts(
                fixed=self._fixed_cost(session, t, lo) + self._overhead,
                history_full=tuple(self._history_full(k, PageCount(self._page_cost(hist[k]))) for k in ks),
                history_dropped=tuple(self._c(self._dropped(k)) for k in ks),
                current_page=self._page_cost(cur),
                cut_marker=cut,
            )
        persona = self.personas[session.user_id].text
        fixed = (self._c(self.system) + self._c(persona_piece(persona))
                 + self._c(history_header_piece(t - lo)) + self._c(current_header_piece(t)) + self._overhead)
        act = [self._c(self._action(session, t, k, self.with_rationale)) for k in ks]
        brief = [self._c(self._action(session, t, k, False)) for k in ks]
        dropped = [self._c(self._dropped(k)) for k in ks]
        return ExampleCosts(
            fixed=fixed,
            history_full=tuple(self._c(step_page_header(k)) + self._page_cost(hist[k]) + a
                               for k, a in zip(ks, act, strict=True)),
            history_dropped=tuple(d + a for d, a in zip(dropped, act, strict=True)),
            current_page=self._page_cost(cur),
            cut_marker=cut,
            history_brief=tuple(d + b for d, b in zip(dropped, brief, strict=True)),
            history_omitted=tuple(0 for _ in ks),
        )

    def _shown(self, ks: list[int], levels: Sequence[int], hist: Any, t: int,
               cur: list[str]) -> tuple[dict[int, list[str]], list[str]]:
        """The lines written for each page shown (history pages at level 0, then the
        current page), with furniture repeated among them turned into references."""
        kept = [k for k, lv in zip(ks, levels, strict=True) if lv == 0]
        pages = [(k, hist[k]) for k in kept] + [(t, cur)]
        shown = dedupe_furniture(pages) if "furniture" in self.compress else [list(p) for _, p in pages]
        return dict(zip(kept, shown[:-1], strict=True)), shown[-1]

    def _exact_total(self, costs: ExampleCosts, ks: list[int], levels: Sequence[int], hist: Any,
                     shown: dict[int, list[str]], current: list[str]) -> int:
        """The prompt's tokens with these levels and these written pages (uncut)."""
        total = costs.fixed + self._page_cost(current)
        for j, (k, lv) in enumerate(zip(ks, levels, strict=True)):
            if lv == 0:
                total += costs.history_full[j] - self._page_cost(hist[k]) + self._page_cost(shown[k])
            else:
                total += costs.level_cost(j, lv)
        return total

    def _refit(self, plan: BudgetPlan, costs: ExampleCosts, ks: list[int], hist: Any, t: int,
               cur: list[str], budget: int) -> BudgetPlan:
        """Furniture makes a page cheaper when an earlier one is shown, which the plan's
        costs (each page alone) cannot know. So, counting exactly: give back the newest
        dropped pages while the prompt fits (the oldest-page rule run backwards), and
        cut the current page only by what the exact total needs."""
        levels = [plan.level(j) for j in range(len(ks))]
        cap = self.config.max_history_pages
        if plan.current_page_tokens is None and max(levels, default=0) == 1:
            while 1 in levels:
                j = max(i for i, lv in enumerate(levels) if lv == 1)
                if cap is not None and len(ks) - j > cap:
                    break
                trial = [0 if i == j else lv for i, lv in enumerate(levels)]
                shown, current = self._shown(ks, trial, hist, t, cur)
                if self._exact_total(costs, ks, trial, hist, shown, current) > budget:
                    break
                levels = trial
            if levels != [plan.level(j) for j in range(len(ks))]:
                keep = tuple(lv == 0 for lv in levels)
                return replace(plan, keep_history=keep, history_level=())
        if plan.current_page_tokens is not None:
            shown, current = self._shown(ks, levels, hist, t, cur)
            total = self._exact_total(costs, ks, levels, hist, shown, current)
            if total <= budget:
                return replace(plan, current_page_tokens=None, total_tokens=total)
            rest = total - self._page_cost(current)
            allowed = budget - rest - costs.cut_marker - CUT_SLACK
            if allowed > plan.current_page_tokens:
                return replace(plan, current_page_tokens=allowed,
                               total_tokens=rest + allowed + costs.cut_marker)
        return plan

    def _compressed_messages(self, session: Session, t: int, lo: int, hist: Any, cur: list[str],
                             persona_text: str) -> tuple[list[dict[str, str]], BudgetPlan | None]:
        """Step ``t``'s prompt with compressed pages: plan on upper-bound costs (each page
        alone), refit with furniture references counted, then count what is written."""
        plan: BudgetPlan | None = None
        costs: ExampleCosts | None = None
        ks = list(range(lo, t))
        if self.counter is not None:
            costs = self._compressed_costs(session, t, lo, hist, cur)
            budget = self._budget_of(session)
            plan = self._plan(costs, budget, session, t)
            if "furniture" in self.compress:
                plan = self._refit(plan, costs, ks, hist, t, cur, budget)
        levels = [plan.level(j) if plan is not None else (0 if self._keep_page(None, j, t, k) else 1)
                  for j, k in enumerate(ks)]
        page_lines, cur_lines = self._shown(ks, levels, hist, t, cur)
        current = lines_text(cur_lines) or EMPTY_PAGE + "\n"
        if plan is not None and plan.current_page_tokens is not None:
            current = self._cut(current, None, plan.current_page_tokens) + CUT_MARKER
        elif plan is not None and costs is not None:
            total = self._exact_total(costs, ks, levels, hist, page_lines, cur_lines)
            plan = replace(plan, total_tokens=total)
        pages_text = {k: lines_text(v) or EMPTY_PAGE + "\n" for k, v in page_lines.items()}
        steps = session.steps
        if self.chat:
            messages = [{"role": "system", "content": self.system}]
            for k in [*ks, t]:
                head = persona_piece(persona_text) if k == lo else ""
                page = current if k == t else pages_text.get(k) or self._dropped(k)
                messages.append({"role": "user", "content": head + chat_page_header(k) + page})
                if k < t:
                    messages.append({"role": "assistant", "content": self._target(steps[k])})
            return messages, plan
        parts = [persona_piece(persona_text), history_header_piece(t - lo)]
        for k, lv in zip(ks, levels, strict=True):
            if lv == 3:
                continue
            if lv == 0:
                parts.append(step_page_header(k))
                parts.append(pages_text[k])
            else:
                parts.append(self._dropped(k))
            parts.append(self._action(session, t, k, self.with_rationale and lv < 2))
        parts.append(current_header_piece(t))
        parts.append(current)
        user = "".join(parts)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}], plan

    def prompt_messages(self, session: Session, t: int) -> list[dict[str, str]]:
        """The prompt of step ``t`` exactly as :meth:`iter_rows` writes it, from the
        session's steps up to ``t``: earlier steps need their action (and rationale), step
        ``t`` only its observation. A simulator builds every step's prompt here, so a
        simulated shopper sees what training showed the model, byte for byte.
        """
        steps = session.steps
        if not 0 <= t < len(steps):
            raise IndexError(f"step {t} of a session with {len(steps)} steps")
        for k in range(t):
            if steps[k].action is None:
                raise ValueError(f"session {session.session_id} step {k} has no action")
        lo = self._history_start(t)
        persona_text = self.personas[session.user_id].text
        if self.compress:
            # The same lines as a build: page k's history form needs page k-1 too.
            first = lo - 1 if lo > 0 and "history_diff" in self.compress else lo
            acted = [st.action.name if st.action is not None else None for st in steps[first : t + 1]]
            h, c = session_forms(self.config.compress, [st.observation.html for st in steps[first : t + 1]],
                                 acted)
            hist = {k: h[k - first] for k in range(lo, t)}
            cur = c[t - first]
            if self.counter is not None:
                self._line_counts(ln for lines in (*hist.values(), cur) for ln in lines)
            messages, _ = self._compressed_messages(session, t, lo, hist, cur, persona_text)
            if len(self._lines) > 200_000:
                self._lines.clear()
            return messages
        idx = list(range(lo, t + 1))
        pieces = {k: page_piece(steps[k].observation.html) for k in idx}
        # Only the current page can need cut points; history pages are counted whole.
        counted = self._count([pieces[k] for k in idx], [(session, t)] * len(idx))
        counts: dict[int, PageCount | None] = dict(zip(idx, counted, strict=True))
        messages, _ = self._messages(session, t, lo, pieces, counts, persona_text)
        return messages

    def _session_rows(
        self, session: Session, pieces: list[str], counts: list[PageCount | None]
    ) -> Iterator[dict[str, Any]]:
        steps = session.steps
        persona = self.personas[session.user_id]
        outcome = session.outcome
        for t, step in enumerate(steps):
            lo = self._history_start(t)
            messages, plan = self._messages(session, t, lo, pieces, counts, persona.text)
            prompt_tokens = None
            if plan is not None:
                prompt_tokens = self._verify_count(messages, plan, f"{session.session_id}#{t}",
                                                   self._budget_of(session))
            yield self._row(session, t, step, messages, persona.source_user_id, outcome, plan, prompt_tokens)

    def _plan(self, costs: ExampleCosts, budget: int, session: Session, t: int) -> BudgetPlan:
        """The strategy's plan; a prompt that cannot fit names its session and step."""
        try:
            return self.strategy.plan(costs, budget, max_pages=self.config.max_history_pages)
        except BudgetError as exc:
            raise BudgetError(exc.what, where=f"--budget; session {session.session_id} step {t}",
                              hint=exc.hint) from None

    def _messages(self, session: Session, t: int, lo: int, pieces: Any, counts: Any,
                  persona_text: str) -> tuple[list[dict[str, str]], BudgetPlan | None]:
        """Step ``t``'s prompt messages and budget plan. ``pieces`` / ``counts`` are indexed
        by step (a list over the session, or a mapping of the steps lo..t)."""
        plan: BudgetPlan | None = None
        if self.counter is not None:
            costs = ExampleCosts(
                fixed=self._fixed_cost(session, t, lo) + self._overhead,
                history_full=tuple(self._history_full(k, counts[k]) for k in range(lo, t)),
                history_dropped=tuple(self._c(self._dropped(k)) for k in range(lo, t)),
                current_page=counts[t].tokens,
                cut_marker=self._c(CUT_MARKER),
            )
            plan = self._plan(costs, self._budget_of(session), session, t)
        if self.chat:
            return self._chat_messages(session, t, lo, pieces, counts, plan, persona_text), plan
        user = self._user_message(session, t, lo, pieces, counts, plan, persona_text)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}], plan

    def _verify_count(self, messages: list[dict[str, str]], plan: BudgetPlan, example: str,
                      budget: int) -> int:
        """Exact-count some prompts: the first few (``auto``) or all of them (``all``).

        Piece counts add up for byte-level BPE tokenizers; a tokenizer for which they
        do not is caught here, and then every prompt is checked from that point on.
        """
        assert self.counter is not None
        estimate = plan.total_tokens
        if not (self._check_all or self._checks_left > 0):
            return estimate
        self._checks_left -= 1
        exact = self.counter.exact_prompt_tokens(messages)
        self.stats.exact_checked += 1
        # A cut page may tokenize shorter than planned (the plan is an upper bound there).
        if exact != estimate and not (plan.page_truncated and exact <= estimate):
            self.stats.exact_mismatches += 1
            if not self._check_all:
                log.warning(
                    "token counts of prompt pieces do not add up for this tokenizer "
                    "(estimate %d, exact %d at %s); checking every prompt exactly from now on",
                    estimate,
                    exact,
                    example,
                )
                self._check_all = True
        if self.config.token_budget is not None and exact > budget:
            raise RuntimeError(
                f"example {example} has {exact} prompt tokens, over the budget of {budget}: "
                f"the budget strategy {self.strategy.name!r} under-counted"
            )
        return exact

    def _user_message(self, session, t, lo, pieces, counts, plan, persona_text) -> str:
        steps = session.steps
        parts = [persona_piece(persona_text), history_header_piece(t - lo)]
        for j, k in enumerate(range(lo, t)):
            if self._keep_page(plan, j, t, k):
                parts.append(step_page_header(k))
                parts.append(pieces[k])
            else:
                parts.append(self._dropped(k))
            parts.append(step_action_piece(steps[k], self.with_rationale))
        parts.append(current_header_piece(t))
        parts.append(self._current_page(pieces, counts, plan, t))
        return "".join(parts)

    def _keep_page(self, plan: BudgetPlan | None, j: int, t: int, k: int) -> bool:
        if plan is not None:
            return plan.keep_history[j]
        m = self.config.max_history_pages  # without a budget plan, only the page cap applies
        return m is None or t - k <= m

    def _current_page(self, pieces, counts, plan, t) -> str:
        if plan is not None and plan.current_page_tokens is not None:
            return self._cut(pieces[t], counts[t], plan.current_page_tokens) + CUT_MARKER
        return pieces[t]

    def _chat_messages(self, session, t, lo, pieces, counts, plan, persona_text) -> list[dict[str, str]]:
        """The ``chat`` style: one user message per page, earlier answers as assistant turns."""
        steps = session.steps
        messages = [{"role": "system", "content": self.system}]
        for j, k in enumerate(range(lo, t + 1)):
            head = persona_piece(persona_text) if k == lo else ""
            if k == t:
                page = self._current_page(pieces, counts, plan, t)
            else:
                page = pieces[k] if self._keep_page(plan, j, t, k) else self._dropped(k)
            messages.append({"role": "user", "content": head + chat_page_header(k) + page})
            if k < t:
                messages.append({"role": "assistant", "content": self._target(steps[k])})
        return messages

    def _cut(self, piece: str, count: PageCount | None, max_tokens: int) -> str:
        """The longest prefix at a pre-token start with at most ``max_tokens`` tokens, + newline."""
        assert self.counter is not None
        points = count.cut_points if count is not None and count.cut_points else None
        if points is None:
            points = self.counter.cut_points(piece)
        # A prefix ending at cut point (i, c) has at most i + 1 tokens (see tokens.py).
        best = 0
        for i, c in points:
            if i + 1 + 1 <= max_tokens:  # + the newline we append
                best = c
            else:
                break
        self.stats.pages_truncated += 1
        return piece[:best].rstrip() + "\n" if best else ""

    def _row(
        self,
        session: Session,
        t: int,
        step: Step,
        messages: list[dict[str, str]],
        persona_src: str | None,
        outcome: str,
        plan: BudgetPlan | None,
        prompt_tokens: int | None,
    ) -> dict[str, Any]:
        action = step.action
        assert action is not None
        has_rationale = bool(step.rationale and step.rationale.strip())
        rationale = " ".join(step.rationale.split()) if has_rationale and step.rationale else None
        names, inputs = self._names_of(step.observation.html)
        target = self._target(step, names if self.handles else None)
        needs = self.with_rationale and not has_rationale
        self.stats.needs_rationale += int(needs)
        if plan is not None:
            self.stats.history_pages_dropped += plan.pages_dropped
            self.stats.history_steps_brief += plan.steps_brief
            self.stats.history_steps_omitted += plan.steps_omitted
        return {
            "prompt": messages,
            "completion": [{"role": "assistant", "content": target}],
            "example_id": f"{session.session_id}#{t}",
            "action_id": step.action_id,
            "session_id": session.session_id,
            "user_id": session.user_id,
            "split": session.split,
            "step_index": t,
            "num_steps": len(session.steps),
            "is_last_step": t == len(session.steps) - 1,
            "action_json": action.to_json(),
            "action_type": action.type,
            "click_type": step.click_type if action.type == "click" else None,
            "semantic_id": action.name,
            "input_text": action.text,
            "rationale": rationale,
            "rationale_source": step.rationale_source if has_rationale else None,
            "needs_rationale": needs,
            "require_rationale": self.with_rationale,
            "persona_mode": self.config.persona_mode,
            "persona_user_id": persona_src,
            "session_outcome": outcome,
            "url": step.observation.url,
            "page_names": names,
            "input_names": inputs,
            "name_handles": self.handles,
            "prompt_tokens": prompt_tokens,
            "history_pages_dropped": plan.pages_dropped if plan is not None else 0,
            "page_truncated": plan.page_truncated if plan is not None else False,
        }


def _check_session(session: Session) -> None:
    for i, st in enumerate(session.steps):
        if st.action is None:
            raise ValueError(
                f"session {session.session_id} step {i} is a {st.kind!r} step; build examples "
                "from filtered sessions (load_opera(..., reduce=True))"
            )


def build_examples(
    data: ShoppingData, config: BuildConfig, counter: TokenCounter | None = None
) -> Iterator[dict[str, Any]]:
    """Example rows for every session of the configured splits, in split then session order."""
    builder = ExampleBuilder(data, config, counter)
    splits = config.splits or data.splits
    for split in splits:
        yield from builder.iter_rows(data.split(split))


def click_type_lookup(data: ShoppingData) -> ClickTypeLookup:
    """Name → click type learned from every labelled click in the data."""
    return ClickTypeLookup.from_pairs(
        (st.action.name, st.click_type)
        for s in data.sessions
        for st in s.steps
        if st.action is not None and st.action.type == "click" and st.action.name and st.click_type
    )


def write_examples(
    data: ShoppingData,
    config: BuildConfig,
    out_dir: str | Path,
    *,
    counter: TokenCounter | None = None,
    console: Any = None,
) -> BuildStats:
    """Build and write ``out_dir/{split}.parquet`` plus ``out_dir/build.json``.

    Everything is written into a temporary folder beside ``out_dir`` and moved in only
    when complete (``build.json`` last), so an interrupted build leaves the previous
    output or nothing, never a parquet file without its footer; other files already in
    ``out_dir`` are kept (:func:`customer_r1.io.atomic_dir`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from customer_r1.errors import BadValue
    from customer_r1.io import atomic_dir

    out = Path(out_dir)
    t0 = time.perf_counter()
    builder = ExampleBuilder(data, config, counter)
    splits = config.splits or data.splits
    missing = [s for s in splits if not data.split(s)]
    if missing:
        raise BadValue(f"no sessions in split(s) {missing}; data has {data.splits}", where="--split")
    total_pages = sum(len(s.steps) for sp in splits for s in data.split(sp))
    with atomic_dir(out, last=("build.json",)) as tmp, Progress(
        TextColumn("[bold]building examples"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages tokenized"),
        TimeRemainingColumn(),
        console=console,
        disable=not config.progress,
        transient=True,
    ) as prog:
        task = prog.add_task("build", total=total_pages)
        for split in splits:
            path = tmp / f"{split}.parquet"
            writer: pq.ParquetWriter | None = None
            buf: list[dict[str, Any]] = []
            n = 0
            for row in builder.iter_rows(data.split(split), lambda k: prog.advance(task, k)):
                buf.append(row)
                if len(buf) >= 256:
                    writer = _flush(writer, path, buf, pa, pq)
                    n += len(buf)
                    buf = []
            if buf or writer is None:
                writer = _flush(writer, path, buf, pa, pq)
                n += len(buf)
            writer.close()
            builder.stats.examples[split] = n
        stats = builder.stats
        stats.seconds = time.perf_counter() - t0
        meta = {
            "config": asdict(config),
            "tokenizer": builder.counter.name if builder.counter else None,
            "source": data.source,
            "skipped_rows": data.skipped,
            "stats": asdict(stats),
            "click_type_lookup": click_type_lookup(data).to_dict(),
            "system_prompt": builder.system,
        }
        (tmp / "build.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    return stats


#: BuildConfig fields added after examples and runs were recorded, with the value those had:
#: a record without the field, and one with it at this value, are the same build.
LATER_BUILD_FIELDS: dict[str, Any] = {"persona_budget": "inside"}
_ABSENT = object()


def comparable_build(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded build config as compared for reuse (later fields at their old value left out)."""
    return {k: v for k, v in config.items() if LATER_BUILD_FIELDS.get(k, _ABSENT) != v}


def ensure_examples(data: ShoppingData, config: BuildConfig, out_dir: str | Path, *,
                    console: Any = None) -> Path:
    """``out_dir`` holds the examples ``config`` builds from ``data``: reused when its
    ``build.json`` records the same config, or the same one over more splits (a scorer asking
    for the test split must never wipe the train split a trainer is about to read), else
    rebuilt."""
    import shutil

    out = Path(out_dir)
    meta = json.loads((out / "build.json").read_text()) if (out / "build.json").exists() else None
    if meta is not None:
        old, new = comparable_build(meta["config"]), comparable_build(asdict(config))
        built, wanted = old.pop("splits", None), new.pop("splits", None)
        if old == new and (built is None or (wanted is not None and set(wanted) <= set(built))):
            return out
        if console is not None:
            console.print(f"[yellow]{out} was built with other settings; rebuilding[/]")
        shutil.rmtree(out)
    write_examples(data, config, out, console=console)
    return out


@cache
def example_schema() -> Any:
    """The Arrow schema of built examples (docs/architecture.md)."""
    import pyarrow as pa

    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.schema(
        [
            ("prompt", msg),
            ("completion", msg),
            ("example_id", pa.string()),
            ("action_id", pa.string()),
            ("session_id", pa.string()),
            ("user_id", pa.string()),
            ("split", pa.string()),
            ("step_index", pa.int32()),
            ("num_steps", pa.int32()),
            ("is_last_step", pa.bool_()),
            ("action_json", pa.string()),
            ("action_type", pa.string()),
            ("click_type", pa.string()),
            ("semantic_id", pa.string()),
            ("input_text", pa.string()),
            ("rationale", pa.string()),
            ("rationale_source", pa.string()),
            ("needs_rationale", pa.bool_()),
            ("require_rationale", pa.bool_()),
            ("persona_mode", pa.string()),
            ("persona_user_id", pa.string()),
            ("session_outcome", pa.string()),
            ("url", pa.string()),
            ("page_names", pa.list_(pa.string())),
            ("input_names", pa.list_(pa.string())),
            ("name_handles", pa.bool_()),
            ("prompt_tokens", pa.int32()),
            ("history_pages_dropped", pa.int32()),
            ("page_truncated", pa.bool_()),
        ]
    )


def _flush(writer: Any, path: Path, rows: list[dict[str, Any]], pa: Any, pq: Any) -> Any:
    schema = example_schema()
    table = pa.Table.from_pylist(rows, schema=schema)
    if writer is None:
        writer = pq.ParquetWriter(path, schema, compression="zstd")
    writer.write_table(table)
    return writer


def read_examples(path: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a built split (``path`` a build folder or a parquet file). A missing or
    corrupt file is a :class:`~customer_r1.errors.UserError` naming it."""
    from customer_r1.errors import MissingFile
    from customer_r1.io import read_parquet

    p = Path(path)
    if p.is_dir():
        p = p / f"{split}.parquet"
    if not p.exists():
        raise MissingFile(f"no built examples at {p}", hint="run `customer-r1 data build` first")
    return read_parquet(p).to_pylist()
