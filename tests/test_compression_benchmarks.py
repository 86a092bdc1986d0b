"""benchmarks/compression*.py: the sign test and the names-and-labels floor they report."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))  # compression.py imports build_examples from its folder
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_sign_test_is_the_exact_two_sided_binomial():
    sign_test = _load("compression_accuracy").sign_test
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(21, 0) == pytest.approx(2 * 0.5**21)
    assert sign_test(10, 12) == pytest.approx(sign_test(12, 10))
    # 8 of 10 one way: P(X <= 2) = 56 / 1024, doubled.
    assert sign_test(8, 2) == pytest.approx(2 * 56 / 1024)


def test_names_floor_counts_names_and_labels(smollm2_tokenizer):
    names_floor = _load("compression").names_floor
    page = ('<html><body><div name="nav_bar"><a name="nav_bar.home" href="/">Home</a></div>'
            '<p>A long description that is neither a name nor a label.</p></body></html>')
    names, with_labels = names_floor([page], smollm2_tokenizer, every=1)
    enc = smollm2_tokenizer.backend_tokenizer.encode
    assert names == len(enc('name="nav_bar" name="nav_bar.home"', add_special_tokens=False).ids)
    assert with_labels == names + len(enc("Home", add_special_tokens=False).ids)
