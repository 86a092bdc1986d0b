"""Write or check ``requirements.lock``: the exact versions `make` installs.

``write``: freeze the running environment (every installed distribution but the project itself
and pip's own tools) into the lock. ``check``: every locked distribution is installed at exactly
its version; ``--strict`` also fails on installed distributions the lock does not name (a fresh
``.venv`` built by `make` must hold exactly the lock). Local version labels (``2.13.0+cpu``) are
recorded as the public version, so the same lock serves a CPU or a CUDA build of torch.

    python tools/envlock.py write requirements.lock
    python tools/envlock.py check requirements.lock [--strict]
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

#: Never locked: the project itself and the installer's own tools.
IGNORED = {"customer-r1", "pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    """PEP 503 normalised name (``Foo_Bar`` and ``foo-bar`` are one distribution)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    """The version without its local label (``2.13.0+cpu`` -> ``2.13.0``)."""
    return version.split("+", 1)[0]


def installed() -> dict[str, str]:
    """Installed distributions, name -> public version, the ignored ones left out.

    The first one on ``sys.path`` wins, as for an import; copies vendored inside another
    package are not installed distributions (setuptools, once imported, e.g. by
    torch.compile, puts its ``_vendor`` folder with its own ``packaging`` on ``sys.path``).
    """
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if not name or canonical(name) in IGNORED or "_vendor" in Path(str(getattr(dist, "_path", ""))).parts:
            continue
        out.setdefault(canonical(name), public(dist.version))
    return out


def read_lock(path: Path) -> dict[str, str]:
    """``name==version`` lines; comments and blank lines skipped; anything else is an error."""
    pins: dict[str, str] = {}
    for i, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not m:
            raise ValueError(f"{path}:{i}: expected 'name==version', got {raw!r}")
        pins[canonical(m.group(1))] = m.group(2)
    return pins


def compare(pins: dict[str, str], have: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(missing, wrong version, not locked) as readable lines."""
    missing = [f"{n}=={v}" for n, v in sorted(pins.items()) if n not in have]
    wrong = [f"{n}: locked {v}, installed {have[n]}" for n, v in sorted(pins.items())
             if n in have and public(v) != have[n]]
    extra = [f"{n}=={v}" for n, v in sorted(have.items()) if n not in pins]
    return missing, wrong, extra


def write(path: Path) -> None:
    have = installed()
    header = [
        "# Exact versions `make` installs (torch first, then this file with --no-deps, then the",
        "# project in editable mode). Refresh with `make lock`; pyproject.toml keeps the compatible",
        "# ranges for people who import the package.",
        f"# Written on Python {platform.python_version()}, {sys.platform} {platform.machine()}.",
    ]
    path.write_text("\n".join(header + [f"{n}=={v}" for n, v in sorted(have.items())]) + "\n")
    print(f"wrote {path}: {len(have)} distributions")


def check(path: Path, strict: bool) -> int:
    try:
        pins = read_lock(path)
    except (OSError, ValueError) as e:
        print(f"error: {e} - run `make lock` to write it", file=sys.stderr)
        return 2
    missing, wrong, extra = compare(pins, installed())
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    for line in wrong:
        print(f"version: {line}", file=sys.stderr)
    for line in extra:
        print(f"{'not locked' if strict else 'note: not locked'}: {line}", file=sys.stderr)
    bad = bool(missing or wrong or (strict and extra))
    print(f"{path}: {len(pins)} locked, {len(missing)} missing, {len(wrong)} other versions, "
          f"{len(extra)} not locked -> {'FAIL' if bad else 'ok'}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["write", "check"])
    ap.add_argument("lock", type=Path, nargs="?", default=Path("requirements.lock"))
    ap.add_argument("--strict", action="store_true", help="also fail on distributions not locked")
    a = ap.parse_args(argv)
    if a.command == "write":
        write(a.lock)
        return 0
    return check(a.lock, a.strict)


if __name__ == "__main__":
    sys.exit(main())
