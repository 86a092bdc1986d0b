"""`eval predict`: the preds.jsonl schema, resuming after torn writes and kill -9,
failed rows, ranked mode on a local model, and the CLI's flag checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from tiny_lm import FakeOpenAI, example_row, make_model, make_tokenizer, one_thread, save_tiny, write_built
from typer.testing import CliRunner

from customer_r1.actions import Action, parse_completion
from customer_r1.cli.entry import new_app
from customer_r1.cli.eval_predict import predict as predict_cmd
from customer_r1.evaluation.backends import Generation
from customer_r1.evaluation.backends.openai_api import OpenAIBackend
from customer_r1.evaluation.predict import (
    GROUND_TRUTH_COLUMNS,
    load_jsonl_checkpoint,
    predict_examples,
    run_predict,
)

GOOD = '{"rationale": "Cheap.", "action": {"type": "click", "name": "product.cheap"}}'


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


class Scripted:
    """An in-process backend: ``reply(user_text)`` → text, or a Generation to return."""

    name = "scripted"

    def __init__(self, reply=lambda user: GOOD) -> None:
        self.reply = reply
        self.seen: list[str] = []

    def generate(self, prompts, **kw) -> list[Generation]:
        out = []
        for p in prompts:
            user = p[-1]["content"]
            self.seen.append(user)
            r = self.reply(user)
            out.append(r if isinstance(r, Generation) else Generation(texts=(r,)))
        return out

    def close(self) -> None:
        pass


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["example_id"] for line in path.read_text().splitlines()]


def _rows(n: int) -> list[dict]:
    return [example_row(i) for i in range(n)]


def test_free_rows_follow_the_schema(tmp_path: Path) -> None:
    rows = _rows(3)

    def reply(user: str):
        if "step 0" in user:
            return GOOD
        if "step 1" in user:
            return "I think they click the cheap one."
        return Generation(error="HTTP 400: prompt too long")

    out = predict_examples(Scripted(reply), rows, tmp_path / "p.jsonl", progress=False)
    preds = [json.loads(x) for x in out.read_text().splitlines()]
    assert [p["example_id"] for p in preds] == ["s1#0", "s1#1", "s1#2"]
    ok, bad, failed = preds
    assert ok["action_json"] == Action.click("product.cheap").to_json() and ok["parse_error"] is None
    assert ok["completion"] == GOOD and ok["mode"] == "free" and ok["candidate_probs"] is None
    assert ok["rationale"] == "Cheap." and ok["backend_error"] is None
    assert ok["action_json_true"] == rows[0]["action_json"]
    for col in GROUND_TRUTH_COLUMNS:
        assert ok[col] == rows[0][col]
    assert bad["action_json"] is None and "no JSON object" in bad["parse_error"]
    assert failed["completion"] is None and failed["backend_error"] == "HTTP 400: prompt too long"
    assert failed["parse_error"].startswith("backend error:")


def test_resume_after_torn_last_line_and_partial_file(tmp_path: Path) -> None:
    rows = _rows(8)
    out = tmp_path / "p.jsonl"
    first = Scripted()
    run_predict(first, rows, out, limit=3, progress=False)
    with out.open("ab") as fh:  # a crash in the middle of writing row 3
        fh.write(b'{"example_id": "s1#3", "completion": "{\\"ratio')
    second = Scripted()
    stats = run_predict(second, rows, out, batch_size=2, progress=False)
    assert stats.repair.torn_tail and stats.already_done == 3 and stats.written == 5
    assert [u.split("step ")[1][0] for u in second.seen] == ["3", "4", "5", "6", "7"]
    assert _ids(out) == [f"s1#{i}" for i in range(8)]
    # a third run has nothing to do
    third = Scripted()
    assert run_predict(third, rows, out, progress=False).written == 0 and not third.seen


def test_resume_refuses_to_mix_modes(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    out.write_text(json.dumps({"example_id": "s1#0", "mode": "ranked"}) + "\n")
    with pytest.raises(ValueError, match="made in mode ranked"):
        run_predict(Scripted(), _rows(2), out, progress=False)


def test_checkpoint_drops_invalid_and_duplicate_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_text('{"example_id": "a", "x": 1}\nnot json\n{"no_id": 1}\n{"example_id": "a", "x": 2}\n'
                 '{"example_id": "b"}\n')
    rows, rep = load_jsonl_checkpoint(p)
    assert list(rows) == ["a", "b"] and rows["a"]["x"] == 1
    assert rep.invalid_lines == 2 and rep.duplicates == 1 and rep.rewritten
    assert p.read_text() == '{"example_id": "a", "x": 1}\n{"example_id": "b"}\n'
    rows, rep = load_jsonl_checkpoint(p)
    assert not rep.rewritten


def test_failed_rows_are_retried_on_resume_unless_kept(tmp_path: Path) -> None:
    rows = _rows(4)
    out = tmp_path / "p.jsonl"
    flaky = Scripted(lambda u: Generation(error="gave up after 7 attempts: HTTP 503")
                     if "step 2" in u else GOOD)
    stats = run_predict(flaky, rows, out, progress=False)
    assert stats.backend_failures == 1
    kept = Scripted()
    run_predict(kept, rows, out, retry_failed=False, progress=False)
    assert not kept.seen
    fixed = Scripted()
    stats = run_predict(fixed, rows, out, progress=False)
    assert len(fixed.seen) == 1 and stats.repair.dropped_by_filter == 1
    assert sorted(_ids(out)) == [f"s1#{i}" for i in range(4)]
    assert all(json.loads(x)["backend_error"] is None for x in out.read_text().splitlines())


def test_stops_early_when_nothing_works(tmp_path: Path) -> None:
    dead = Scripted(lambda u: Generation(error="gave up after 7 attempts: network error"))
    with pytest.raises(RuntimeError, match="all failed"):
        run_predict(dead, _rows(20), tmp_path / "p.jsonl", batch_size=4, progress=False)


def test_kill_9_mid_run_loses_only_rows_in_flight(tmp_path: Path) -> None:
    rows = _rows(40)
    built = write_built(tmp_path / "built", {"test": rows})
    out = tmp_path / "preds.jsonl"
    with FakeOpenAI(delay_s=0.04) as srv:
        script = (
            "from customer_r1.evaluation.backends.openai_api import OpenAIBackend\n"
            "from customer_r1.evaluation.predict import predict_examples\n"
            f"b = OpenAIBackend({srv.url!r}, 'm', concurrency=1, max_retries=0)\n"
            f"predict_examples(b, {str(built)!r}, {str(out)!r}, batch_size=1, progress=False)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", script])
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = out.read_bytes().count(b"\n")
        assert 5 <= done < 40
        srv.delay_s = 0.0
        backend = OpenAIBackend(srv.url, "m", concurrency=4)
        stats = run_predict(backend, built, out, progress=False)
        backend.close()
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 40
    assert set(ids) == {r["example_id"] for r in rows}
    assert stats.already_done == done and stats.written == 40 - done


def test_data_as_directory_file_or_missing_split(tmp_path: Path) -> None:
    built = write_built(tmp_path / "b", {"test": _rows(2), "val": _rows(3)})
    assert run_predict(Scripted(), built, tmp_path / "1.jsonl", split="val", progress=False).total == 3
    assert run_predict(Scripted(), built / "test.parquet", tmp_path / "2.jsonl", progress=False).total == 2
    with pytest.raises(FileNotFoundError, match=r"splits here: \['test', 'val'\]"):
        run_predict(Scripted(), built, tmp_path / "3.jsonl", split="train", progress=False)


def test_ranked_mode_local_model(tmp_path: Path) -> None:
    from customer_r1.evaluation.backends import HFBackend

    tok = make_tokenizer()
    backend = HFBackend(make_model(tok, seed=5), tok)
    rows = _rows(3)
    out = predict_examples(backend, rows, tmp_path / "r.jsonl", mode="ranked", progress=False,
                           ranker_kwargs={"max_rationale_tokens": 8, "max_text_tokens": 4})
    for line, row in zip(out.read_text().splitlines(), rows, strict=True):
        pred = json.loads(line)
        assert pred["mode"] == "ranked" and pred["parse_error"] is None
        action = parse_completion(pred["completion"]).action
        assert action.to_json() == pred["action_json"]
        assert pred["action_json"] in pred["candidate_probs"]
        assert abs(sum(pred["candidate_probs"].values()) - 1) < 1e-6
        assert action.type == "terminate" or action.name in row["page_names"] + row["input_names"]


def test_ranked_mode_needs_a_local_model(tmp_path: Path) -> None:
    b = OpenAIBackend("http://127.0.0.1:9/v1", "m")
    with pytest.raises(ValueError, match=r"ranked mode .* needs a local model"):
        run_predict(b, _rows(1), tmp_path / "p.jsonl", mode="ranked", progress=False)
    b.close()


# ------------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = new_app()  # the CLI's own group: user errors are one line, exit 2
    app.command("predict")(predict_cmd)

    @app.callback()
    def _group() -> None:
        """Test group."""

    return app


def _out(result) -> str:
    return result.output + (getattr(result, "stderr", "") or "")


def test_cli_endpoint_free_mode(tmp_path: Path) -> None:
    built = write_built(tmp_path / "b", {"test": _rows(5)})
    out = tmp_path / "preds.jsonl"
    with FakeOpenAI(reply=lambda c: GOOD) as srv:
        args = ["predict", "--endpoint", srv.url, "--model-name", "m", "--data", str(built),
                "--out", str(out), "--limit", "4", "--concurrency", "2", "--no-progress"]
        result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, _out(result)
    assert len(_ids(out)) == 4 and "4 predicted" in _out(result)


def test_cli_flag_errors(tmp_path: Path) -> None:
    built = write_built(tmp_path / "b", {"test": _rows(1)})
    base = ["predict", "--data", str(built), "--out", str(tmp_path / "p.jsonl")]
    r = CliRunner().invoke(_app(), [*base, "--endpoint", "http://x/v1", "--model-name", "m",
                                    "--mode", "ranked"])
    assert r.exit_code == 2 and "needs a local model" in _out(r)
    r = CliRunner().invoke(_app(), base)
    assert r.exit_code == 2 and "exactly one of --model" in _out(r)
    r = CliRunner().invoke(_app(), [*base, "--endpoint", "http://x/v1"])
    assert r.exit_code == 2 and "--model-name" in _out(r)
    r = CliRunner().invoke(_app(), [*base, "--model", "m", "--rationale-samples", "4"])
    assert r.exit_code == 2 and "ranked mode" in _out(r)
    r = CliRunner().invoke(_app(), [*base, "--model", "m", "--mode", "ranked",
                                    "--rationale-samples", "4", "--rationale-temperature", "0"])
    assert r.exit_code == 2 and "--rationale-temperature must be > 0" in _out(r)


def test_cli_vllm_missing_and_ranked_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = write_built(tmp_path / "b", {"test": _rows(2)})
    model_dir = save_tiny(tmp_path / "tiny")
    out = tmp_path / "p.jsonl"
    monkeypatch.setitem(sys.modules, "vllm", None)
    r = CliRunner().invoke(_app(), ["predict", "--model", str(model_dir), "--engine", "vllm",
                                    "--data", str(built), "--out", str(out)])
    # a missing optional engine is a user mistake (issue 15): exit 2, one line (was exit 1)
    assert r.exit_code == 2 and "customer-r1[vllm]" in _out(r)
    r = CliRunner().invoke(_app(), ["predict", "--model", str(model_dir), "--mode", "ranked",
                                    "--data", str(built), "--out", str(out), "--device", "cpu",
                                    "--max-rationale-tokens", "6", "--no-progress"])
    assert r.exit_code == 0, _out(r)
    assert all(json.loads(x)["candidate_probs"] for x in out.read_text().splitlines())
    sampled = tmp_path / "sampled.jsonl"
    r = CliRunner().invoke(_app(), ["predict", "--model", str(model_dir), "--mode", "ranked",
                                    "--data", str(built), "--out", str(sampled), "--device", "cpu",
                                    "--max-rationale-tokens", "6", "--rationale-samples", "3",
                                    "--no-progress"])
    assert r.exit_code == 0, _out(r)
    for line in sampled.read_text().splitlines():
        pred = json.loads(line)
        assert abs(sum(pred["candidate_probs"].values()) - 1) < 1e-6
        assert pred["action_json"] == max(pred["candidate_probs"], key=pred["candidate_probs"].get)
