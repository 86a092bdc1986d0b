"""Input and output paths of the CLI, declared by kind so they are checked the same way.

A command group is made with :func:`customer_r1.cli.entry.new_app` (its errors are then
answered in one line), and every argument or option that reads a path names what it
expects::

    from customer_r1.cli.entry import new_app
    from customer_r1.cli.params import input_argument, input_option, output_option

    app = new_app(no_args_is_help=True)

    @app.command("run")
    def run(
        world: Annotated[Path, input_argument("world", help="A folder written by `world generate`.")],
        model: Annotated[str, input_option("model", "--model", help="Checkpoint folder or Hub id.")],
        out: Annotated[Path, output_option("--out", help="Folder for the results.")],
    ) -> None: ...

While the command line is parsed (before the command body, its imports and its heavy
work), the cheap part of the check runs: the path exists, is a file or a folder as the
kind needs, is not empty, holds the marker files of its kind (``build.json`` of a build,
``world/world.json`` of a world, a checkpoint's config, weights and tokenizer), and a
parquet file has its footer. Each failure is a :class:`~customer_r1.errors.UserError`
naming the option and the path; the CLI prints it as one line with exit code 2.
Content errors (a bad JSONL line, a YAML recipe with an unknown key, a bad row) are
found by the loader, which raises :class:`~customer_r1.errors.BadInput` naming the file
and line; commands raise ``UserError`` subclasses for anything else the user can fix
(``BadOption`` for inconsistent options, ``EndpointUnreachable``, ``PortInUse`` ...).

``named=True`` declares a repeatable ``NAME=PATH`` option (``--run real=preds.jsonl``).
A new kind goes into :data:`KINDS` with its check, and ``tests/test_cli_errors.py``
refuses to pass until its CASES table has cases for it. Any ``Path``-typed parameter must
be declared with one of these helpers (the same test enforces it); outputs use
:func:`output_option` and are written atomically (:mod:`customer_r1.io`). Model strings
(``--model``) are checked locally here and resolved (local cache, Hub reachability) with
:func:`customer_r1.models.resolve_model` right before loading.

:func:`input_kind` and :func:`param_constraints` read the declarations back from the
click objects of ``typer.main.get_command(app)`` (that is how the test finds them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer

from customer_r1.errors import BadInput, BadOption, MissingInput


@dataclass(frozen=True)
class Kind:
    """One kind of input: how it is shown (metavar), described and checked."""

    name: str
    metavar: str
    description: str
    check: Callable[[Path, str, str], None]  # (path, as typed, where) -> None or raise


# ---------------------------------------------------------------------------- checks


def _exists(p: Path, text: str, where: str, kind: str) -> None:
    if not p.exists():
        raise MissingInput(f"no such file or folder {text}", where=where,
                           hint=f"expected {KINDS[kind].description}")


def _folder(p: Path, text: str, where: str, kind: str) -> None:
    _exists(p, text, where, kind)
    if not p.is_dir():
        raise BadInput(f"{text} is a file, not a folder", where=where,
                       hint=f"expected {KINDS[kind].description}")
    if not any(p.iterdir()):
        raise BadInput(f"{text} is an empty folder", where=where,
                       hint=f"expected {KINDS[kind].description}")


def _file(p: Path, text: str, where: str, kind: str) -> None:
    _exists(p, text, where, kind)
    if p.is_dir():
        raise BadInput(f"{text} is a folder, not a file", where=where,
                       hint=f"expected {KINDS[kind].description}")
    if p.stat().st_size == 0:
        raise BadInput(f"{text} is an empty file", where=where,
                       hint=f"expected {KINDS[kind].description}")


def _check_opera(p: Path, text: str, where: str) -> None:
    from customer_r1.data.opera import CONFIGS, is_hub_id

    if is_hub_id(text):
        return  # a Hub dataset id; the loader reports an unreachable Hub
    _folder(p, text, where, "opera")
    layouts = [p / "action", *(p / f"OPeRA_{c}" / "action" for c in CONFIGS)]
    if not any(d.is_dir() for d in layouts):
        raise BadInput(f"{text} holds no OPeRA data (no action/, OPeRA_filtered/action/ or "
                       "OPeRA_full/action/)", where=where, hint=f"expected {KINDS['opera'].description}")


def _check_world(p: Path, text: str, where: str) -> None:
    from customer_r1.io import check_parquet, read_json

    _folder(p, text, where, "world")
    info = p / "world" / "world.json"
    policies = sorted((p / "world").glob("policy_*.parquet"))
    if not info.is_file() and not policies:
        raise BadInput(f"{text} is not a generated world (no world/world.json or world/policy_*.parquet)",
                       where=where, hint="write one with `customer-r1 world generate --out DIR`")
    if info.is_file() and not isinstance(read_json(info, where=where), dict):
        raise BadInput(f"{info} is not a JSON object", where=where)
    for policy in policies:
        check_parquet(policy, where=where)


def _check_ceilings(p: Path, text: str, where: str) -> None:
    _exists(p, text, where, "ceilings")
    if p.is_dir():
        if not any((p / c).is_file() for c in ("world/world.json", "world.json")):
            raise BadInput(f"{text} holds no world.json (looked for world/world.json, world.json)",
                           where=where, hint=f"expected {KINDS['ceilings'].description}")
    else:
        _file(p, text, where, "ceilings")


def _check_built(p: Path, text: str, where: str) -> None:
    from customer_r1.io import check_parquet

    _exists(p, text, where, "built")
    if p.is_dir():
        _folder(p, text, where, "built")
        files = sorted(p.glob("*.parquet"))
        if not files:
            raise BadInput(f"{text} holds no built examples (no {{split}}.parquet)", where=where,
                           hint="build them with `customer-r1 data build SRC --out DIR`")
    else:
        _file(p, text, where, "built")
        files = [p]
    for f in files:
        check_parquet(f, where=where)


def _check_preds(p: Path, text: str, where: str) -> None:
    _file(p, text, where, "preds")


def _check_run(p: Path, text: str, where: str) -> None:
    _exists(p, text, where, "run")
    if p.is_dir():
        if not any((p / n).is_file() for n in ("preds.jsonl", "metrics.json")):
            raise BadInput(f"{text} is not a run folder (no preds.jsonl or metrics.json)", where=where,
                           hint=f"expected {KINDS['run'].description}")
        if (p / "preds.jsonl").is_file():
            _file(p / "preds.jsonl", str(p / "preds.jsonl"), where, "run")
    else:
        _file(p, text, where, "run")


def _check_click_types(p: Path, text: str, where: str) -> None:
    _exists(p, text, where, "click_types")
    if p.is_dir():
        if not (p / "build.json").is_file():
            raise BadInput(f"{text} holds no build.json", where=where,
                           hint=f"expected {KINDS['click_types'].description}")
        _file(p / "build.json", str(p / "build.json"), where, "click_types")
    else:
        _file(p, text, where, "click_types")


def _check_recipe(p: Path, text: str, where: str) -> None:
    import yaml

    _file(p, text, where, "recipe")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{text}:{mark.line + 1}" if mark is not None else text
        raise BadInput("not valid YAML", where=at, hint="fix the recipe's syntax") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{text} is not a YAML mapping of settings", where=where,
                       hint="a recipe holds `name: value` lines")


def _check_personas(p: Path, text: str, where: str) -> None:
    _file(p, text, where, "personas")


def _check_page_kinds(p: Path, text: str, where: str) -> None:
    from customer_r1.sim.pagekind import PageKinds

    _file(p, text, where, "page_kinds")
    PageKinds.load(p)


def _check_words(p: Path, text: str, where: str) -> None:
    _file(p, text, where, "words")
    if not any(x.strip() and not x.lstrip().startswith("#")
               for x in p.read_text(encoding="utf-8", errors="replace").splitlines()):
        raise BadInput(f"{text} holds no words", where=where, hint=f"expected {KINDS['words'].description}")


def _check_sim_shards(p: Path, text: str, where: str) -> None:
    _folder(p, text, where, "sim_shards")
    if not any((d / "run.json").is_file() for d in (p / "shards").glob("*-of-*")):
        raise BadInput(f"{text} holds no shards (no shards/I-of-N/run.json)", where=where,
                       hint=f"expected {KINDS['sim_shards'].description}")


def _check_sessions(p: Path, text: str, where: str) -> None:
    """Structure only (which kind of folder, its JSON files parse); the loader
    (``sim.compare.load_sessions``) reads every session line and names a damaged one."""
    from customer_r1.data.opera import CONFIGS, is_hub_id
    from customer_r1.io import read_json

    if is_hub_id(text):
        return  # a Hub dataset id; the loader reports an unreachable Hub
    _folder(p, text, where, "sessions")
    hint = f"expected {KINDS['sessions'].description}"
    if (p / "ab.json").is_file():
        ab = read_json(p / "ab.json", where=where)
        if not isinstance(ab, dict) or not isinstance(ab.get("runs"), dict):
            raise BadInput(f"{p / 'ab.json'} is not a `sim ab` result (no runs)", where=where, hint=hint)
        return
    manifest, sessions = p / "manifest.json", p / "sessions.jsonl"
    if manifest.is_file() or sessions.is_file():
        if not manifest.is_file():
            raise BadInput(f"{text} is an unfinished simulation run (no manifest.json)", where=where,
                           hint="resume it with the same `sim run` command (or `sim merge` its shards)")
        if not isinstance(read_json(manifest, where=where), dict):
            raise BadInput(f"{manifest} is not a JSON object", where=where, hint=hint)
        _file(sessions, str(sessions), where, "sessions")
        return
    if (p / "shards").is_dir():
        raise BadInput(f"{text} holds an unmerged sharded run", where=where,
                       hint=f"run `customer-r1 sim merge {text}` first")
    layouts = [p / "action", *(p / f"OPeRA_{c}" / "action" for c in CONFIGS)]
    if not any(d.is_dir() for d in layouts):
        raise BadInput(f"{text} holds no sessions (no ab.json, manifest.json + sessions.jsonl, or OPeRA "
                       "action/ tables)", where=where, hint=hint)


def _check_model(p: Path, text: str, where: str) -> None:
    from customer_r1.models import check_model_arg

    check_model_arg(text, where)


def _check_tokenizer(p: Path, text: str, where: str) -> None:
    from customer_r1.models import check_model_arg

    check_model_arg(text, where, tokenizer_only=True)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("opera", "OPERA", "an OPeRA folder (or one holding OPeRA_filtered/), a world folder or a "
             "Hub dataset id such as NEU-HAI/OPeRA", _check_opera),
        Kind("world", "WORLD_DIR", "a folder written by `customer-r1 world generate`", _check_world),
        Kind("ceilings", "WORLD", "a world folder or its world.json", _check_ceilings),
        Kind("built", "BUILT", "a built-examples folder ({split}.parquet + build.json, from "
             "`customer-r1 data build`) or one of its parquet files", _check_built),
        Kind("preds", "PREDS", "a preds.jsonl written by `customer-r1 eval predict`", _check_preds),
        Kind("run", "RUN", "a run folder holding preds.jsonl (or metrics.json), or a preds.jsonl",
             _check_run),
        Kind("click_types", "BUILD_JSON", "a build.json or the built folder holding it",
             _check_click_types),
        Kind("recipe", "RECIPE", "a YAML recipe (recipes/*/*.yaml)", _check_recipe),
        Kind("model", "MODEL", "a checkpoint folder (config.json, weights, tokenizer) or a Hub id",
             _check_model),
        Kind("tokenizer", "TOKENIZER", "a tokenizer folder, a Hub id or 'smollm2'", _check_tokenizer),
        Kind("personas", "PERSONAS", 'a JSONL (or JSON list) of {"user_id": ..., "survey": {...}} personas',
             _check_personas),
        Kind("page_kinds", "YAML", "a YAML file of URL pattern -> page kind (home, search, product, "
             "reviews, cart, checkout, order, other)", _check_page_kinds),
        Kind("words", "WORDS", "a text file with one word or phrase per line", _check_words),
        Kind("sim_shards", "RUN_DIR", "a simulation folder whose shards/ were written by "
             "`customer-r1 sim run --shard i/n --out RUN_DIR`", _check_sim_shards),
        Kind("sessions", "SESSIONS", "a simulation run folder, a `sim ab` folder, a world folder or an "
             "OPeRA folder (or Hub id)", _check_sessions),
    )
}


# ---------------------------------------------------------------------------- declaring


def where_of(param: Any) -> str:
    """How an error names a parameter: ``--data`` for an option, ``SRC`` for an argument."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if opts:
        return max(opts, key=len)
    metavar = getattr(param, "metavar", None)
    return str(metavar or (param.name or "").upper())


def check_input(kind: str, value: str | Path, where: str, *, named: bool = False) -> None:
    """Run ``kind``'s check on one value (``NAME=PATH`` when ``named``)."""
    text = str(value)
    if named:
        name, sep, text = text.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise BadOption(f"expected NAME=PATH, got {value!r}", where=where)
        text = text.strip()
    if not text.strip():
        raise BadOption("empty path", where=where, hint=f"expected {KINDS[kind].description}")
    KINDS[kind].check(Path(text).expanduser(), text, where)


def _input_callback(kind: str, named: bool) -> Callable[..., Any]:
    if kind not in KINDS:
        raise KeyError(f"unknown input kind {kind!r}; known: {sorted(KINDS)}")

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        for v in value if isinstance(value, (list, tuple)) else [value]:
            check_input(kind, v, where_of(param), named=named)
        return value

    check.input_kind = kind  # type: ignore[attr-defined]
    check.named = named  # type: ignore[attr-defined]
    return check


def _output_callback(kind: Literal["dir", "file"]) -> Callable[..., Any]:
    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        check_output(value, where_of(param), kind)
        return value

    check.output_kind = kind  # type: ignore[attr-defined]
    return check


def check_output(value: str | Path, where: str, kind: Literal["dir", "file"]) -> None:
    """An output path must be creatable: not the wrong kind, and not under a file."""
    p = Path(value).expanduser()
    if not str(value).strip():
        raise BadOption("empty path", where=where)
    if kind == "dir" and p.is_file():
        raise BadInput(f"{value} is a file; a folder is written here", where=where,
                       hint="choose a new or existing folder")
    if kind == "file" and p.is_dir():
        raise BadInput(f"{value} is a folder; a file is written here", where=where,
                       hint="give a file name")
    for anc in p.absolute().parents:
        if anc.exists():
            if not anc.is_dir():
                raise BadInput(f"{anc} is a file, so {value} cannot be created", where=where)
            break


def input_option(kind: str, *names: str, named: bool = False, **kw: Any) -> Any:
    """``typer.Option`` for an input of ``kind`` (see the module doc)."""
    kw.setdefault("metavar", "NAME=" + KINDS[kind].metavar if named else KINDS[kind].metavar)
    return typer.Option(*names, callback=_input_callback(kind, named), **kw)


def input_argument(kind: str, **kw: Any) -> Any:
    """``typer.Argument`` for an input of ``kind``."""
    kw.setdefault("metavar", KINDS[kind].metavar)
    return typer.Argument(callback=_input_callback(kind, False), **kw)


def output_option(*names: str, kind: Literal["dir", "file"] = "dir", **kw: Any) -> Any:
    """``typer.Option`` for an output folder (``kind="dir"``) or file."""
    kw.setdefault("metavar", "DIR" if kind == "dir" else "FILE")
    return typer.Option(*names, callback=_output_callback(kind), **kw)


# ---------------------------------------------------------------------------- reading back


def _declared(param: Any, attr: str) -> Any:
    cb = getattr(param, "callback", None)
    for obj in (getattr(cb, "__wrapped__", None), cb):
        value = getattr(obj, attr, None)
        if value is not None:
            return value
    return None


def input_kind(param: Any) -> str | None:
    """The input kind a click parameter was declared with, or None."""
    return _declared(param, "input_kind")


def is_named_input(param: Any) -> bool:
    """Declared as ``NAME=PATH``."""
    return bool(_declared(param, "named"))


def output_kind(param: Any) -> str | None:
    """``dir`` or ``file`` for a parameter declared with :func:`output_option`."""
    return _declared(param, "output_kind")


def param_constraints(param: Any) -> dict[str, Any]:
    """``choices``, ``min`` and ``max`` of a parameter (None when unconstrained), read from
    typer's own parameter objects or from click types, whichever this typer builds."""
    out: dict[str, Any] = {"choices": None, "min": None, "max": None, "number": None}
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:  # typer >= 0.20: its own coercion, no click ParamType
        choices = desc.choices
        if choices is not None:
            out["choices"] = [getattr(c, "value", c) for c in choices]
        if desc.is_ranged:
            out.update(min=param.min, max=param.max, number=desc.annotation)
        return out
    t = getattr(param, "type", None)
    if t is not None and hasattr(t, "choices"):
        out["choices"] = list(t.choices)
    if t is not None and (getattr(t, "min", None) is not None or getattr(t, "max", None) is not None):
        out.update(min=t.min, max=t.max, number=float if "Float" in type(t).__name__ else int)
    return out
