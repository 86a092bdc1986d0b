"""Write the before/after examples of docs/compression.md (issue 19), from real builds.

1. One step of a compact-world session (the demo's page size) at the demo's 832-token
   budget: the demo's prompt (last 3 steps, oldest pages dropped) and the prompt with
   ``--compress furniture,history_diff,trim_current`` and the whole session.
2. One OPeRA-sized page (the synthetic world's ``page_size: opera``): its tokens raw, as
   the current page under ``trim_current`` (and with ``handles``), and as a history page
   under ``history_diff``,
   with the first lines of each compressed form.

The compact step is counted with the demo's own tokenizer (``--tokenizer``, default
``runs/compress/base``, which ``benchmarks/compression_accuracy.py`` trains exactly as
``make demo`` trains ``runs/demo/base``: element names are single tokens there, so the
demo's prompts are ~730 tokens); the OPeRA-sized page with SmolLM2-135M's tokenizer
(bundled, no download), as ``benchmarks/compression.py`` counts. The text between the
``<!-- example:start -->`` and ``<!-- example:end -->`` markers of docs/compression.md is
replaced; everything else in that file is left as written.

Usage: python benchmarks/compression_example.py [--doc docs/compression.md] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from customer_r1.data.compress import history_change, trim_page, with_handles
from customer_r1.data.examples import BuildConfig, ExampleBuilder
from customer_r1.data.names import page_names
from customer_r1.data.tokens import TokenCounter, load_tokenizer
from customer_r1.world import WorldConfig, generate_world

START, END = "<!-- example:start -->", "<!-- example:end -->"
ALL = ["furniture", "history_diff", "trim_current"]


def _block(text: str) -> str:
    return "```text\n" + text.rstrip("\n").replace("```", "'''") + "\n```\n"


def _short(line: str, n: int = 220) -> str:
    return line if len(line) <= n else line[:n] + f" [... {len(line) - n:,} more characters of this line]"


def compact_example(tok, tokenizer: str) -> str:
    """The demo's prompt of one step against the compressed whole-session prompt."""
    world = generate_world(WorldConfig(users=6, sessions_per_user=4, seed=0, page_size="compact"))
    data = world.to_shopping_data()
    # A step deep in a session whose decision needs the session so far: the next
    # result not yet viewed, after products were opened and rejected.
    pick = next((s, t) for ws, s in zip(world.sessions, data.sessions, strict=True)
                for t, st in enumerate(ws.steps) if t >= 6 and st.motive.key == "next_unseen")
    session, t = pick
    counter = TokenCounter(tok)
    out = []
    for title, over in [("Before: the demo's prompt (last 3 steps, oldest pages dropped)",
                         {"max_history_steps": 3, "compress": []}),
                        ("After: `--compress furniture,history_diff,trim_current`, the whole session",
                         {"max_history_steps": None, "compress": ALL})]:
        cfg = BuildConfig(tokenizer=tokenizer, token_budget=832, prompt_style="compact", progress=False,
                          **over)
        rows = {r["example_id"]: r for r in ExampleBuilder(data, cfg, counter).iter_rows([session])}
        row = rows[f"{session.session_id}#{t}"]
        user = row["prompt"][-1]["content"]
        out.append(f"**{title}**: {row['prompt_tokens']} prompt tokens (system message included), "
                   f"{row['history_pages_dropped']} of {t} history pages omitted.\n\n{_block(user)}")
    act = session.steps[t].action
    head = (f"Step {t + 1} of a compact-world session (world seed 0), at the demo's 832-token "
            f"budget (tokens of the demo's tokenizer, `{tokenizer}`); the shopper's next action "
            f"is `{act.type}` on `{act.name}` (the world's "
            f"motive: the next result not yet viewed). Only the user message is shown; the "
            f"system message is the same in both.\n\n")
    return head + "\n".join(out)


def opera_example(tok) -> str:
    """One OPeRA-sized page raw, trimmed as current page, and as a history change."""
    world = generate_world(WorldConfig(users=2, sessions_per_user=2, seed=0, page_size="opera",
                                       population=200, test_fraction=0.0))
    data = world.to_shopping_data()
    session = data.sessions[0]
    k = next(i for i, st in enumerate(session.steps) if i > 0 and "/dp/" in st.observation.url)
    prev, page = session.steps[k - 1].observation.html, session.steps[k].observation.html
    acted = session.steps[k].action.name if session.steps[k].action is not None else None

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    trimmed = trim_page(page)
    names = page_names(page)[0]
    handled = with_handles(trimmed, names)
    cart = names.index("buybox.add_to_cart")
    change = history_change(prev, page, acted)
    lines = [
        f"A product page of an OPeRA-sized world session (step {k + 1}; the shopper then acted on "
        f"`{acted}`): {len(page):,} characters.\n",
        "| form | characters | tokens |", "|---|---|---|",
        f"| raw page (oldest-page drop shows it whole) | {len(page):,} | {n(page):,} |",
        f"| `trim_current` (as the current page) | {sum(len(x) + 1 for x in trimmed):,} | "
        f"{n(''.join(x + chr(10) for x in trimmed)):,} |",
        f"| `trim_current` + `handles` (as the current page) | {sum(len(x) + 1 for x in handled):,} | "
        f"{n(''.join(x + chr(10) for x in handled)):,} |",
        f"| `history_diff` (as a history page, against step {k}) | {sum(len(x) + 1 for x in change):,} "
        f"| {n(''.join(x + chr(10) for x in change)):,} |",
        "",
        "The raw page's first 600 characters:\n",
        _block(page[:600] + " [...]"),
        f"`trim_current`, the first 6 of {len(trimmed)} lines (one line per page region; long "
        "lines shortened here, not in the prompt):\n",
        _block("\n".join(_short(x) for x in trimmed[:6])),
        f"The same lines with `handles` (the model writes `\"name\": \"{cart}\"` for *Add to Cart*, "
        "`buybox.add_to_cart`; predictions, rewards and the simulator map it back):\n",
        _block("\n".join(_short(x) for x in handled[:6])),
        f"`history_diff`, all {len(change)} lines:\n",
        _block("\n".join(_short(x, 600) for x in change)),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doc", default="docs/compression.md")
    ap.add_argument("--tokenizer", default="runs/compress/base",
                    help="The compact step's tokenizer: the demo's base (runs/demo/base after make demo).")
    a = ap.parse_args()
    tok = load_tokenizer("smollm2")
    body = ("<!-- written by benchmarks/compression_example.py; do not edit by hand -->\n\n"
            "### A compact-world step\n\n" + compact_example(load_tokenizer(a.tokenizer), a.tokenizer)
            + "\n### An OPeRA-sized page\n\n" + opera_example(tok))
    doc = Path(a.doc)
    text = doc.read_text() if doc.exists() else f"{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    doc.write_text(f"{before}{START}\n{body}\n{END}{after}")
    print(f"wrote the examples into {doc}")


if __name__ == "__main__":
    main()
