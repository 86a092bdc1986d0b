"""CPU training speed levers: bf16 where the CPU has it (fp32 fallback said), padding-free
batches attended per example (same loss as one example at a time), recipe flags."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import yaml
from trainkit import common_args, tiny_setup

from customer_r1.training import cpu_speed, sft
from customer_r1.training.common import parse_config
from customer_r1.training.configs import SFTScriptArguments

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_setup(tmp_path_factory.mktemp("cpu_speed"), n_sessions=4)


def _train(tiny, out: Path, *extra: str, steps: int = 3) -> dict:
    base, built = tiny
    return sft.main([
        "--dataset_path", str(built), "--model_name_or_path", str(base), *common_args(out),
        "--max_steps", str(steps), "--learning_rate", "3e-3", "--warmup_steps", "0",
        "--gradient_checkpointing", "false", "--completion_only_loss", "true",
        "--lr_scheduler_type", "constant", "--max_length", "2048", *extra,
    ])


def _losses(out: Path) -> list[float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return [h["loss"] for h in state["log_history"] if "loss" in h]


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert "avx512_bf16" in cpu_speed.cpu_flags(info)
    assert cpu_speed.cpu_flags(tmp_path / "absent") == set()


def test_auto_takes_bf16_where_the_cpu_has_it_and_falls_back_to_fp32(monkeypatch, caplog):
    monkeypatch.setattr(cpu_speed, "cpu_flags", lambda *a: {"avx2", "avx512_bf16"})
    assert cpu_speed.choose_cpu_precision("auto").bf16 is True
    monkeypatch.setattr(cpu_speed, "cpu_flags", lambda *a: {"avx2", "fma"})
    choice = cpu_speed.choose_cpu_precision("auto")
    assert choice.bf16 is False and "avx512_bf16" in choice.reason
    assert cpu_speed.choose_cpu_precision("false").bf16 is False
    assert cpu_speed.choose_cpu_precision("true").bf16 is True  # forced, and the reason says it is slow

    class Args:
        use_cpu, fp16, bf16 = True, False, True

    class Script:
        cpu_bf16 = "auto"

    args = Args()
    with caplog.at_level(logging.WARNING, logger="customer_r1.training.cpu_speed"):
        cpu_speed.apply_cpu_precision(Script(), args)
    assert args.bf16 is False
    assert any("falls back to fp32" in r.getMessage() for r in caplog.records)

    Script.cpu_bf16 = None  # unset: the recipe's own bf16 stands
    args = Args()
    assert cpu_speed.apply_cpu_precision(Script(), args) is None and args.bf16 is True


def test_bad_cpu_bf16_value_is_a_user_error():
    from customer_r1.errors import UserError

    with pytest.raises(UserError, match="cpu_bf16"):
        cpu_speed.choose_cpu_precision("maybe")


def test_recipe_flags_round_trip_through_the_loader(tiny, tmp_path):
    base, built = tiny
    recipe = yaml.safe_load((ROOT / "recipes/tiny-cpu/sft.yaml").read_text())
    assert recipe["cpu_bf16"] == "auto" and recipe["cpu_padding_free"] is True
    argv = ["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--dataset_path", str(built),
            "--model_name_or_path", str(base), "--output_dir", str(tmp_path / "o")]
    from trl import SFTConfig

    script, _, _ = parse_config(SFTConfig, SFTScriptArguments, argv)
    assert script.cpu_bf16 == "auto" and script.cpu_padding_free is True
    script, _, _ = parse_config(
        SFTConfig, SFTScriptArguments, [*argv, "--cpu_bf16", "false", "--cpu_padding_free", "false"]
    )
    assert script.cpu_bf16 == "false" and script.cpu_padding_free is False


def test_varlen_attention_equals_attention_per_example():
    torch.manual_seed(0)

    class Attn(torch.nn.Module):
        num_key_value_groups = 2

    lens = [5, 9, 3]
    q = torch.randn(1, 4, sum(lens), 8)
    k, v = torch.randn(1, 2, sum(lens), 8), torch.randn(1, 2, sum(lens), 8)
    cu = torch.tensor([0, 5, 14, 17], dtype=torch.int32)
    out, _ = cpu_speed.varlen_sdpa_attention(Attn().eval(), q, k, v, None, scaling=0.3, cu_seq_lens_q=cu)
    assert out.shape == (1, sum(lens), 4, 8)
    for s, e in [(0, 5), (5, 14), (14, 17)]:
        ref = torch.nn.functional.scaled_dot_product_attention(
            q[:, :, s:e], k[:, :, s:e].repeat_interleave(2, 1), v[:, :, s:e].repeat_interleave(2, 1),
            is_causal=True, scale=0.3,
        ).transpose(1, 2)
        torch.testing.assert_close(out[:, s:e], ref)


def test_fp32_fallback_trains_in_fp32(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_speed, "cpu_flags", lambda *a: {"avx2"})  # a CPU without bf16
    seen = _record_matmul_dtypes(monkeypatch)
    m = _train(tiny, tmp_path / "fp32", "--per_device_train_batch_size", "2", "--cpu_bf16", "auto",
               "--bf16", "true", steps=1)
    assert m["cpu_bf16"] is False and "avx512_bf16" in m["cpu_precision_reason"]
    assert seen and set(seen) == {torch.float32}


def test_padding_free_batch_trains_the_loss_of_one_example_at_a_time(tiny, tmp_path):
    one = tmp_path / "one"
    packed = tmp_path / "packed"
    _train(tiny, one, "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "4")
    m = _train(tiny, packed, "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
               "--cpu_padding_free", "true")
    assert m["cpu_padding_free"] is True
    a, b = _losses(one), _losses(packed)
    assert len(a) == len(b) == 3
    assert a == pytest.approx(b, rel=1e-4)
    from safetensors.torch import load_file

    wa, wb = load_file(one / "model.safetensors"), load_file(packed / "model.safetensors")
    # Adam turns float noise in a near-zero gradient into a whole step (lr) of either sign:
    # a few elements may differ by up to 2 x lr per update, the rest agree closely.
    diff = torch.cat([(wa[n] - wb[n]).abs().flatten() for n in wa])
    assert diff.max() <= 2 * 3 * 3e-3
    assert (diff > 1e-4).float().mean() < 0.005
    # saved with transformers' own attention: it loads without our registration
    assert "cpu_varlen_sdpa" not in (packed / "config.json").read_text()


def _record_matmul_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of an MLP projection's output at every training forward."""
    seen: list[torch.dtype] = []
    load = sft.load_model

    def load_and_watch(*a, **kw):
        model = load(*a, **kw)
        model.model.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        return model

    monkeypatch.setattr(sft, "load_model", load_and_watch)
    return seen


@pytest.mark.skipif(not cpu_speed.native_bf16()[0], reason="this CPU has no native bf16")
def test_bf16_path_trains(tiny, tmp_path, monkeypatch):
    out = tmp_path / "bf16"
    seen = _record_matmul_dtypes(monkeypatch)
    m = _train(tiny, out, "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
               "--cpu_bf16", "auto", "--cpu_padding_free", "true", "--learning_rate", "1e-2", steps=8)
    assert m["cpu_bf16"] is True
    assert seen and set(seen) == {torch.bfloat16}  # autocast really ran the matmuls in bf16
    losses = _losses(out)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3
    from safetensors.torch import load_file

    assert all(t.dtype == torch.float32 for t in load_file(out / "model.safetensors").values())


@pytest.mark.slow
def test_compiled_decoder_layers_train_the_same_losses(tiny, tmp_path):
    """``cpu_compile_layers``: every decoder layer compiled (dynamic shapes, the per-example
    attention left eager); the same losses as eager within float noise, weights that load
    without torch.compile's wrappers."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    flags = ("--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
             "--cpu_padding_free", "true", "--cpu_bf16", "false")
    _train(tiny, eager, *flags)
    m = _train(tiny, compiled, *flags, "--cpu_compile_layers", "true")
    assert m["cpu_compiled_layers"] == 2  # the tiny test model has two layers
    assert _losses(eager) == pytest.approx(_losses(compiled), rel=1e-3)
    from safetensors.torch import load_file

    assert set(load_file(compiled / "model.safetensors")) == set(load_file(eager / "model.safetensors"))
