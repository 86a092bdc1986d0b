"""`data rationales`: synthetic rationales fill only flagged training rows, never touch
human ones, keep targets parseable, and resume from the jsonl cache."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from tiny_lm import FakeOpenAI, example_row, one_thread, save_tiny, write_built
from typer.testing import CliRunner

from customer_r1.actions import Action, parse_completion
from customer_r1.cli.data_rationales import rationales as rationales_cmd
from customer_r1.cli.entry import new_app
from customer_r1.evaluation.backends import Generation
from customer_r1.evaluation.rationales import (
    CACHE_NAME,
    clean_rationale,
    rationale_prompt,
    synthesize_rationales,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


class Scripted:
    name = "scripted"

    def __init__(self, reply=None, crash_after: int | None = None) -> None:
        self.reply = reply or (lambda user: "Rationale: I wanted to see the cheapest option.")
        self.crash_after = crash_after
        self.seen: list[str] = []

    def generate(self, prompts, **kw) -> list[Generation]:
        out = []
        for p in prompts:
            if self.crash_after is not None and len(self.seen) >= self.crash_after:
                raise KeyboardInterrupt  # the run dies mid-way
            self.seen.append(p[-1]["content"])
            r = self.reply(p[-1]["content"])
            out.append(r if isinstance(r, Generation) else Generation(texts=(r,)))
        return out

    def close(self) -> None:
        pass


def _train_rows() -> list[dict]:
    rows = []
    for i in range(8):
        if i % 4 == 0:  # human rationale: must stay byte-identical
            rows.append(example_row(i, split="train", rationale=f"Human reason {i}.",
                                    rationale_source="human"))
        else:
            rows.append(example_row(i, split="train", needs_rationale=True))
    # contradictory flags: a human rationale flagged anyway is still never replaced
    rows.append(example_row(8, split="train", rationale="Keep me.", rationale_source="human",
                            needs_rationale=True))
    return rows


def _read(path: Path) -> dict[str, dict]:
    return {r["example_id"]: r for r in pq.read_table(path).to_pylist()}


def test_fills_flagged_rows_and_never_touches_human_ones(tmp_path: Path) -> None:
    train = _train_rows()
    test_rows = [example_row(i, split="test", needs_rationale=True) for i in range(2)]
    src = write_built(tmp_path / "built", {"train": train, "test": test_rows})
    backend = Scripted()
    stats = synthesize_rationales(backend, src, tmp_path / "out", batch_size=3, progress=False)
    assert stats.needed == 6 and stats.synthesised == 6 and stats.applied == 6
    assert len(backend.seen) == 6

    before = {r["example_id"]: r for r in train}
    after = _read(tmp_path / "out" / "train.parquet")
    for eid, row in after.items():
        old = before[eid]
        if old["rationale_source"] == "human":
            assert row == old | {"split": "train"}  # unchanged, every column
            continue
        assert row["rationale"] == "I wanted to see the cheapest option."
        assert row["rationale_source"] == "synthetic" and row["needs_rationale"] is False
        pred = parse_completion(row["completion"][0]["content"])
        assert pred.action == Action.from_json(old["action_json"])
        assert pred.rationale == row["rationale"]
    # other splits are copied unchanged; build.json notes the synthesis
    assert _read(tmp_path / "out" / "test.parquet") == {r["example_id"]: r for r in test_rows}
    meta = json.loads((tmp_path / "out" / "build.json").read_text())
    assert meta["tokenizer"] == "tiny" and meta["rationale_synthesis"]["applied"] == 6
    # the source is left alone
    assert _read(src / "train.parquet") == before


def test_prompt_shows_context_and_true_action() -> None:
    row = example_row(1, split="train", needs_rationale=True)
    msgs = rationale_prompt(row)
    assert msgs[0]["role"] == "system" and "first person" in msgs[0]["content"]
    assert row["prompt"][1]["content"] in msgs[1]["content"]
    assert 'typed "rice cooker" into the field named "search_box"' in msgs[1]["content"]
    assert "Predict the next action as JSON" not in msgs[1]["content"]


def test_clean_rationale() -> None:
    assert clean_rationale('  "I like it."  ') == "I like it."
    assert clean_rationale('{"rationale": "From JSON."}') == "From JSON."
    assert clean_rationale("```\nReason: fenced\n  text\n```") == "fenced text"
    assert clean_rationale("   ") is None and clean_rationale(None) is None
    long = "This is one sentence. " * 60
    cut = clean_rationale(long)
    assert cut is not None and len(cut) <= 600 and cut.endswith(".")


def test_resumes_from_cache_and_retries_failures(tmp_path: Path) -> None:
    src = write_built(tmp_path / "built", {"train": _train_rows()})
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        synthesize_rationales(Scripted(crash_after=2), src, out, batch_size=2, progress=False)
    cached = [json.loads(x) for x in (out / CACHE_NAME).read_text().splitlines()]
    assert len(cached) == 2

    flaky = Scripted(lambda u: Generation(error="HTTP 500") if "step 3" in u else "Because.")
    stats = synthesize_rationales(flaky, src, out, batch_size=2, progress=False)
    assert stats.cached == 2 and len(flaky.seen) == 4 and stats.failed == 1
    assert stats.applied == 5
    assert _read(out / "train.parquet")["s1#3"]["needs_rationale"] is True

    last = Scripted(lambda u: "Finally.")
    stats = synthesize_rationales(last, src, out, progress=False)
    assert len(last.seen) == 1 and "step 3" in last.seen[0] and stats.applied == 6
    rows = _read(out / "train.parquet")
    assert not any(r["needs_rationale"] and r["rationale_source"] != "human" for r in rows.values())


def test_out_must_differ_from_data(tmp_path: Path) -> None:
    src = write_built(tmp_path / "built", {"train": _train_rows()})
    with pytest.raises(ValueError, match="must differ"):
        synthesize_rationales(Scripted(), src, src, progress=False)


def _app() -> typer.Typer:
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command("rationales")(rationales_cmd)

    @app.callback()
    def _group() -> None:
        """Test group."""

    return app


def test_cli_endpoint(tmp_path: Path) -> None:
    src = write_built(tmp_path / "built", {"train": _train_rows()})
    with FakeOpenAI(reply=lambda c: "I was curious.") as srv:
        r = CliRunner().invoke(_app(), ["rationales", "--endpoint", srv.url, "--model-name", "m",
                                        "--data", str(src), "--out", str(tmp_path / "o"),
                                        "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = _read(tmp_path / "o" / "train.parquet")
    assert sum(r["rationale"] == "I was curious." for r in rows.values()) == 6


def test_cli_local_model(tmp_path: Path) -> None:
    src = write_built(tmp_path / "built", {"train": _train_rows()[:3]})
    model = save_tiny(tmp_path / "tiny")
    r = CliRunner().invoke(_app(), ["rationales", "--model", str(model), "--device", "cpu",
                                    "--data", str(src), "--out", str(tmp_path / "o"),
                                    "--max-new-tokens", "8", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "train.parquet").exists()
