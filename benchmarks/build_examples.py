"""Build every example of an OPeRA-scale dataset at a 65k budget, beside the tokenization floor.

OPeRA-filtered train: 437 sessions, 4,864 steps, pages of 2.8k-626k characters with a
median of ~103k. This script generates pages of that shape (its own simple generator:
nav bar, result grids, carousels, footers), builds all examples with the SmolLM2-135M
tokenizer (49,152-token byte-level BPE), and measures the floor: tokenizing every page
once with the same tokenizer on all cores. The last line is

    examples_per_s=<x> total_s=<y> tokenize_floor_s=<z>

Usage: python benchmarks/build_examples.py [--sessions 437] [--steps 4864] [--budget 65536]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from customer_r1.actions import Action
from customer_r1.data.examples import BuildConfig, page_piece, write_examples
from customer_r1.data.tokens import ENCODE_BATCH, TokenCounter, load_tokenizer
from customer_r1.domain import Observation, Session, ShoppingData, Step, User

WORDS = [
    "rice",
    "cooker",
    "stainless",
    "steel",
    "kitchen",
    "nonstick",
    "ceramic",
    "white",
    "black",
    "compact",
    "digital",
    "timer",
    "warm",
    "cup",
    "capacity",
    "fuzzy",
    "logic",
    "induction",
    "brand",
    "new",
    "review",
    "stars",
    "rating",
    "price",
    "deal",
    "prime",
    "delivery",
    "free",
    "returns",
    "color",
    "size",
    "style",
    "pack",
    "count",
    "organic",
    "garden",
    "spray",
    "soap",
    "outdoor",
    "plant",
]


def _slug(words: list[str]) -> str:
    return "_".join(words).lower()


def make_page(rng: random.Random, target_chars: int) -> tuple[str, list[str]]:
    """Simplified HTML of about ``target_chars`` characters and its clickable names."""
    names = ["nav_bar.search_input", "nav_bar.search_button", "nav_bar.cart"]
    parts = [
        '<html><head></head><body><div name="nav_bar" role="navigation" aria-label="Primary">'
        '<input name="nav_bar.search_input" type="text" aria-label="Search Amazon"/>'
        '<input name="nav_bar.search_button" type="submit" value="Go"/>'
        '<a name="nav_bar.cart" href="/cart">Cart</a></div>'
    ]
    size = sum(len(p) for p in parts)
    section = 0
    while size < target_chars:
        section += 1
        kind = rng.choice(("search_results", "carousel", "footer", "product_details"))
        parts.append(f'<div name="{kind}_{section}">')
        for _ in range(rng.randint(5, 30)):
            title = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
            name = f"{kind}_{section}.{_slug(title)}"
            names.append(f"{name}.product_title")
            price = f"${rng.randint(3, 400)}.{rng.randint(0, 99):02d}"
            stars = f"{rng.randint(10, 50) / 10} out of 5 stars"
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60)))
            chunk = (
                f'<div name="{name}"><a name="{name}.product_title" href="/dp/B0{rng.randint(10**7, 10**8)}">'
                f'{" ".join(title).title()}</a><span aria-label="{stars}">{stars}</span>'
                f"<span>{price}</span><p>{text}</p>"
                f'<button name="{name}.add_to_cart" type="button">Add to cart</button></div>'
            )
            parts.append(chunk)
            size += len(chunk)
        parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts), names


def make_data(n_sessions: int, n_steps: int, seed: int = 0) -> ShoppingData:
    """OPeRA-shaped sessions: lognormal page sizes (median ~103k, clipped to 2.8k-626k)."""
    rng = random.Random(seed)
    lengths = [1] * n_sessions
    for _ in range(n_steps - n_sessions):
        lengths[rng.randrange(n_sessions)] += 1
    users = {
        f"user{i}": User(
            f"user{i}",
            {
                "Demographic Information": {"Age": "25-34 years old", "Gender": rng.choice(["Woman", "Man"])},
                "Self Description": {"Two sentence description": "I shop online a lot. I like good deals."},
                "Shopping Preference": {
                    "To what extent do you agree with the following statements": {
                        "I compare prices before buying": rng.choice(["Agree", "Disagree", "Strongly agree"]),
                        "I read reviews before buying": rng.choice(["Agree", "Disagree"]),
                    }
                },
                "Personality": {"Big Five Scores": {"Openness": "High", "Conscientiousness": "Medium"}},
            },
        )
        for i in range(51)
    }
    sessions: list[Session] = []
    aid = 0
    for s, n in enumerate(lengths):
        uid = f"user{s % 51}"
        steps = []
        for t in range(n):
            chars = int(min(626_000, max(2_800, rng.lognormvariate(11.54, 0.8))))
            html, names = make_page(rng, chars)
            if t == n - 1:
                action, ct = Action.terminate(), None
            elif rng.random() < 0.1:
                action, ct = Action.input("nav_bar.search_input", " ".join(rng.sample(WORDS, 2))), None
            else:
                action, ct = Action.click(rng.choice(names[3:] or names)), "product_link"
            aid += 1
            steps.append(
                Step(
                    f"a{aid}",
                    f"2025-04-14T21:{t // 60:02d}:{t % 60:02d}.000Z",
                    action.type,
                    Observation(html),
                    action,
                    ct,
                    rationale="I want to compare prices first." if rng.random() < 0.03 else None,
                )
            )
        sessions.append(Session(f"{uid}_2025-04-14T21:52:46Z_{s}", uid, "train", steps))
    return ShoppingData(users, sessions, source="benchmark generator")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=437)
    ap.add_argument("--steps", type=int, default=4864)
    ap.add_argument("--budget", type=int, default=65_536)
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--out", default=None, help="Keep the built examples here (default: a temp folder).")
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = make_data(args.sessions, args.steps)
    pages = [page_piece(st.observation.html) for s in data.sessions for st in s.steps]
    chars = [len(p) for p in pages]
    print(
        f"generated {len(data.sessions)} sessions, {len(pages)} steps, page chars median "
        f"{statistics.median(chars):,.0f} (min {min(chars):,}, max {max(chars):,}, total {sum(chars):,}) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    tok = load_tokenizer(args.tokenizer)
    cores = os.cpu_count()
    print(f"tokenizer: {args.tokenizer} ({type(tok).__name__}, vocabulary {len(tok):,}); cores: {cores}")

    # Floor: every page tokenized once, same tokenizer, same batching over all cores.
    backend = tok.backend_tokenizer
    t0 = time.perf_counter()
    n_tokens = 0
    for i in range(0, len(pages), ENCODE_BATCH):
        n_tokens += sum(
            len(e) for e in backend.encode_batch(pages[i : i + ENCODE_BATCH], add_special_tokens=False)
        )
    floor = time.perf_counter() - t0
    print(f"floor: {n_tokens:,} page tokens in {floor:.1f} s ({sum(chars) / floor / 1e6:.2f} M chars/s)")

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cr1-bench-"))
    cfg = BuildConfig(tokenizer=args.tokenizer, token_budget=args.budget, progress=False)
    t0 = time.perf_counter()
    stats = write_examples(data, cfg, out, counter=TokenCounter(tok))
    total = time.perf_counter() - t0

    import pyarrow.parquet as pq

    t = pq.read_table(
        out / "train.parquet", columns=["prompt_tokens", "history_pages_dropped", "page_truncated"]
    )
    prompt = t.column("prompt_tokens").to_pylist()
    dropped = t.column("history_pages_dropped").to_pylist()
    cut = sum(t.column("page_truncated").to_pylist())
    n = len(prompt)
    print(
        f"built {n} examples at budget {args.budget}: mean prompt {statistics.mean(prompt):,.0f} tokens "
        f"(max {max(prompt):,}), {cut} current pages cut, mean {statistics.mean(dropped):.1f} history "
        f"pages dropped, exact checks {stats.exact_checked} ({stats.exact_mismatches} mismatches), "
        f"output {sum(f.stat().st_size for f in out.glob('*.parquet')) / 1e6:.0f} MB"
    )
    assert max(prompt) <= args.budget, "an example exceeds the budget"
    print(f"total/floor = {total / floor:.2f}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    print(f"examples_per_s={n / total:.2f} total_s={total:.1f} tokenize_floor_s={floor:.1f}")


if __name__ == "__main__":
    main()
