"""requirements.lock: what `make` installs, and the check that an environment holds it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def _envlock():
    spec = importlib.util.spec_from_file_location("envlock", REPO / "tools" / "envlock.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["envlock"] = mod
    spec.loader.exec_module(mod)
    return mod


envlock = _envlock()


def test_lock_parses_and_pins_the_heavy_dependencies() -> None:
    pins = envlock.read_lock(LOCK)
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "playwright"):
        assert name in pins, name
        assert pins[name][0].isdigit() and "+" not in pins[name]
    assert "customer-r1" not in pins and "pip" not in pins


def test_this_environment_holds_the_locked_versions() -> None:
    """The suite runs in the .venv `make` built from the lock: nothing missing, nothing else."""
    missing, wrong, _ = envlock.compare(envlock.read_lock(LOCK), envlock.installed())
    assert missing == [] and wrong == [], (missing, wrong)


def test_compare_names_missing_wrong_and_unlocked() -> None:
    pins = {"torch": "2.13.0", "trl": "1.16.0", "numpy": "2.0.0"}
    have = {"torch": "2.13.0", "trl": "1.15.0", "rich": "13.0"}
    missing, wrong, extra = envlock.compare(pins, have)
    assert missing == ["numpy==2.0.0"]
    assert wrong == ["trl: locked 1.16.0, installed 1.15.0"]
    assert extra == ["rich==13.0"]


def test_names_and_local_labels_are_normalised() -> None:
    assert envlock.canonical("Foo_Bar.baz") == "foo-bar-baz"
    assert envlock.public("2.13.0+cpu") == "2.13.0"


def test_bad_lock_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "requirements.lock"
    bad.write_text("# ok\ntorch>=2\n")
    assert envlock.check(bad, strict=False) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "make lock" in err


def test_strict_check_fails_on_an_unlocked_distribution(tmp_path: Path) -> None:
    have = envlock.installed()
    lock = tmp_path / "requirements.lock"
    # every installed distribution but one: a strict check must fail, a lenient one pass
    dropped = sorted(have)[0]
    lock.write_text("".join(f"{n}=={v}\n" for n, v in have.items() if n != dropped))
    assert envlock.check(lock, strict=False) == 0
    assert envlock.check(lock, strict=True) == 1


def test_vendored_copies_on_sys_path_are_not_installed_distributions(tmp_path: Path, monkeypatch) -> None:
    """setuptools, once imported (torch.compile does), appends its ``_vendor`` folder, with an
    older ``packaging``, to sys.path: the installed one still counts, the vendored one not."""
    real = envlock.installed()["packaging"]
    info = tmp_path / "setuptools" / "_vendor" / "packaging-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: packaging\nVersion: 0.1\n")
    monkeypatch.syspath_prepend(str(info.parent))
    assert envlock.installed()["packaging"] == real != "0.1"
