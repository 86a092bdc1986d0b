"""benchmarks/sim_ab_validity.py on a tiny world: ``--truth-only`` ends with the truth line
(placebos exactly 0), a full run with one line per policy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from customer_r1.world import WorldConfig, export_world, generate_world

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "sim_ab_validity.py"
VARIANTS = "reviews_hidden,out_of_stock_50,no_deals,placebo_labels,placebo_banner"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("benchworld")
    export_world(generate_world(WorldConfig(users=12, sessions_per_user=3, seed=9, population=30)), d)
    return d


def _run(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600,
                         check=True)
    return [x for x in out.stdout.splitlines() if x.strip()]


def test_truth_only_ends_with_the_truth_line(world_dir, tmp_path):
    lines = _run("--out", str(tmp_path / "b"), "--world", str(world_dir), "--truth-only",
                 "--variants", VARIANTS, "--truth-sessions-per-user", "15", "--boot", "200")
    m = re.fullmatch(r"n_sig=(\d+) pos=(\d+) neg=(\d+) placebos=(\d+) placebo_max_abs=([0-9.]+)", lines[-1])
    assert m, lines[-1]
    n_sig, pos, neg, placebos, mx = int(m[1]), int(m[2]), int(m[3]), int(m[4]), float(m[5])
    assert n_sig == pos + neg and n_sig <= 3 and placebos == 2 and mx == 0.0
    assert neg >= 1  # half the catalog out of stock: down, even on 180 sessions per arm
    assert (tmp_path / "b" / "truth.json").exists()


def test_full_run_ends_with_one_line_per_policy(world_dir, tmp_path):
    lines = _run("--out", str(tmp_path / "b"), "--world", str(world_dir), "--policies", "baseline,world",
                 "--variants", VARIANTS, "--truth-sessions-per-user", "4", "--max-users", "8",
                 "--control-sessions-per-user", "4", "--sessions-per-user", "2", "--boot", "200",
                 "--concurrency", "4")
    pat = (r"policy={} sign=(\S+) spearman=(\S+) mae=(\S+) false_pos=(\d+) placebo_fp=(\S+) "
           r"per_user_r=(\S+)")
    assert re.fullmatch(pat.format("baseline"), lines[-2]), lines[-2]
    m = re.fullmatch(pat.format("world"), lines[-1])
    assert m, lines[-1]
    # the world's shopper is the truth: its placebo arms are exactly 0, never significant
    assert float(m[5]) == 0.0
