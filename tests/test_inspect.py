"""`customer-r1 data inspect`: the statistics, their rendering, and the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from opera_layout import action_row, session_id_of, write_opera
from rich.console import Console
from typer.testing import CliRunner

from customer_r1.cli.data_inspect import inspect
from customer_r1.cli.entry import new_app
from customer_r1.data import inspect as inspect_mod
from customer_r1.data.inspect import collect_stats, percentiles, render_stats, summarize_examples
from customer_r1.data.opera import load_opera

SMALL_PAGE = "<html><body>" + "x" * 88 + "</body></html>"  # 114 characters


def _write_small(root: Path, *, bad: bool = False) -> Path:
    """train: 2 sessions (purchase, terminate) of users a, b; test: 1 session of a."""
    s1, s2, s3 = session_id_of("a", 1), session_id_of("b", 2), session_id_of("a", 3)
    train = [
        action_row(s1, "input", simplified_html=SMALL_PAGE),
        action_row(s1, simplified_html=SMALL_PAGE, rationale="compare prices"),
        action_row(s1, click_type="purchase", semantic_id="buybox.add_to_cart",
                   simplified_html=SMALL_PAGE * 3),
        action_row(s2, click_type="product_link", semantic_id="results.1.title"),
        action_row(s2, "terminate", rationale="nothing good",
                   click_type="teleport" if bad else None),
    ]
    if bad:
        train[3]["click_type"] = "teleport"
    test = [action_row(s3, "terminate", simplified_html=SMALL_PAGE)]
    return write_opera(root, actions={"train": train, "test": test})


def test_percentiles() -> None:
    p = percentiles([1, 2, 3, 4, 5])
    assert (p["count"], p["mean"], p["min"], p["p50"], p["max"]) == (5, 3, 1, 3, 5)
    assert p["p25"] == 2 and p["p75"] == 4 and p["p90"] == pytest.approx(4.6)
    assert set(percentiles([])) == set(p) and all(v == 0 for v in percentiles([]).values())


def test_collect_stats(tmp_path: Path) -> None:
    _write_small(tmp_path)
    stats = collect_stats(load_opera(tmp_path))
    assert stats["splits"] == ["test", "train"]
    assert stats["users"] == {"in_user_tables": 2,
                              "with_sessions": {"test": 1, "train": 2, "all": 2}}
    assert stats["sessions"] == {"test": 1, "train": 2, "all": 3}
    assert stats["steps"] == {"test": 1, "train": 5, "all": 6}
    assert stats["action_types"]["train"] == {"input": 1, "click": 3, "terminate": 1}
    assert stats["action_types"]["all"] == {"input": 1, "click": 3, "terminate": 2}
    assert stats["click_types"]["all"] == {"search": 1, "purchase": 1, "product_link": 1}
    assert stats["click_types"]["test"] == {}
    assert stats["rationale"]["train"] == {
        "steps": 5, "with_rationale": 2, "source:human": 2, "coverage": 0.4
    }
    assert stats["rationale"]["test"]["coverage"] == 0.0
    assert stats["outcomes"]["train"] == {"purchase": 1, "terminate": 1}
    assert stats["outcomes"]["all"] == {"purchase": 1, "terminate": 2}
    length = stats["session_length"]
    assert (length["train"]["min"], length["train"]["max"], length["all"]["p50"]) == (2, 3, 2)
    pages = stats["page_chars"]
    assert pages["test"]["p50"] == len(SMALL_PAGE) and pages["train"]["max"] == 3 * len(SMALL_PAGE)
    assert stats["prompt_tokens"] is None and stats["skipped"] == {}
    json.dumps(stats)  # JSON-able as it is


def test_render_stats_prints_every_section(tmp_path: Path) -> None:
    _write_small(tmp_path, bad=True)
    stats = collect_stats(load_opera(tmp_path, lenient=True))
    stats["prompt_tokens"] = summarize_examples(
        [{"split": "train", "prompt_tokens": 100, "page_truncated": True,
          "history_pages_dropped": 2}], budget=4096)
    console = Console(record=True, width=200)
    render_stats(stats, console)
    text = console.export_text()
    for title in ("OPeRA data", "Actions by type", "Clicks by click type", "Session outcomes",
                  "Session length", "Page size", "Prompt tokens (budget 4096)",
                  "Left out while loading", "bad_click_type", "steps with rationale"):
        assert title in text, title
    assert "product_link" not in text  # its row was skipped as a bad click type
    assert "current page cut: train 1" in text


def test_summarize_examples() -> None:
    rows = [
        {"split": "train", "prompt_tokens": 10, "page_truncated": False,
         "history_pages_dropped": 0},
        {"split": "train", "prompt_tokens": 30, "page_truncated": True,
         "history_pages_dropped": 4},
        {"split": "test", "prompt_tokens": 20, "page_truncated": False,
         "history_pages_dropped": 1},
        {"split": "test", "prompt_tokens": None},  # built without counting: ignored
    ]
    out = summarize_examples(rows, budget=64)
    assert out["budget"] == 64
    assert out["percentiles"]["train"]["p50"] == 20 and out["percentiles"]["all"]["count"] == 3
    assert out["page_truncated"] == {"train": 1, "test": 0, "all": 1}
    assert out["mean_history_pages_dropped"] == {"train": 2.0, "test": 1.0, "all": 5 / 3}


# ---------------------------------------------------------------- the command


@pytest.fixture
def cli() -> typer.Typer:
    """The command registered the way cli/data.py does, on a local app."""
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command("inspect")(inspect)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer in group mode: `app inspect SRC`
        pass

    return app


def _run(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, ["inspect", *args])


def test_cli_json(cli: typer.Typer, tmp_path: Path) -> None:
    base = _write_small(tmp_path)
    result = _run(cli, str(base), "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["steps"]["all"] == 6 and stats["outcomes"]["all"]["purchase"] == 1


def test_cli_tables(cli: typer.Typer, tmp_path: Path) -> None:
    _write_small(tmp_path)
    result = _run(cli, str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Actions by type" in result.stdout and "rows skipped: 0" in result.stdout


def test_cli_strict_error_and_lenient(cli: typer.Typer, tmp_path: Path) -> None:
    _write_small(tmp_path, bad=True)
    result = _run(cli, str(tmp_path))
    assert result.exit_code == 2  # a user mistake (issue 15): exit 2 and one line (was exit 1)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert "train-00000-of-00001.parquet" in result.output
    assert "row 3" in result.output and "'click_type'" in result.output
    assert "--lenient" in result.output

    result = _run(cli, str(tmp_path), "--lenient", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"] == {"bad_click_type": 1}


def test_cli_full_config_and_reduce(cli: typer.Typer, tmp_path: Path) -> None:
    sid = session_id_of("f", 0)
    rows = [action_row(sid, "scroll"), action_row(sid, "tabActivate"),
            action_row(sid, "terminate")]
    write_opera(tmp_path, actions={"train": rows}, config="full")
    reduced = json.loads(_run(cli, str(tmp_path), "--config", "full", "--json").stdout)
    assert reduced["action_types"]["all"] == {"terminate": 1}
    kept = json.loads(_run(cli, str(tmp_path), "--config", "full", "--no-reduce",
                           "--json").stdout)
    assert kept["action_types"]["all"] == {"scroll": 1, "tab_activate": 1, "terminate": 1}


def test_cli_bad_arguments(cli: typer.Typer, tmp_path: Path) -> None:
    _write_small(tmp_path)
    assert _run(cli, str(tmp_path), "--budget", "100").exit_code == 2  # needs --tokenizer
    assert _run(cli, str(tmp_path), "--config", "raw").exit_code == 2
    missing = _run(cli, str(tmp_path / "nope"))  # exit 2 since issue 15 (was 1)
    assert missing.exit_code == 2 and f"no such file or folder {tmp_path / 'nope'}" in missing.output


def test_cli_tokenizer_uses_example_builder(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--tokenizer/--budget reach the builder; its prompt_tokens are summarised per split."""
    seen: dict[str, Any] = {}

    def fake_stats(data: Any, *, tokenizer: str, budget: int | None) -> dict[str, Any]:
        seen.update(tokenizer=tokenizer, budget=budget, steps=sum(len(s.steps)
                                                                  for s in data.sessions))
        rows = [{"split": s.split, "prompt_tokens": 7 * len(s.steps)} for s in data.sessions]
        return summarize_examples(rows, budget=budget)

    monkeypatch.setattr(inspect_mod, "prompt_token_stats", fake_stats)
    _write_small(tmp_path)
    result = _run(cli, str(tmp_path), "--tokenizer", "tok", "--budget", "512", "--json")
    assert result.exit_code == 0, result.output
    assert seen == {"tokenizer": "tok", "budget": 512, "steps": 6}
    tokens = json.loads(result.stdout)["prompt_tokens"]
    assert tokens["budget"] == 512 and tokens["percentiles"]["train"]["max"] == 21


def test_prompt_tokens_with_the_real_builder(tmp_path: Path) -> None:
    """End to end through customer_r1.data.examples with the bundled SmolLM2 tokenizer."""
    _write_small(tmp_path)
    stats = collect_stats(load_opera(tmp_path), tokenizer="smollm2", budget=2048)
    tokens = stats["prompt_tokens"]
    assert tokens["budget"] == 2048
    assert tokens["percentiles"]["train"]["count"] == 5
    assert tokens["percentiles"]["test"]["count"] == 1
    assert 0 < tokens["percentiles"]["all"]["max"] <= 2048
