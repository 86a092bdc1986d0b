"""Issue 15: every command answers bad input in one line, the same way.

The commands are discovered from the Typer app (``typer.main.get_command``), so a new
command is covered without editing this file. Each input parameter declares its kind
(``customer_r1.cli.params``); CASES says how to break an input of each kind (missing,
empty, of the wrong kind, corrupt), and options with constrained values get a value out
of range or off the list. Every case must exit with code 2, print exactly one line on
stderr (``error: ...`` naming the option or the path) and no traceback. A kind without
cases, or a ``Path`` parameter declared with no kind, fails the test.

Cases run in this process through the script's own entry (``customer_r1.cli.run``);
a few run the installed ``customer-r1`` to prove the real entry point answers alike.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from killkit import CLI, cli_env, invoke
from tiny_lm import save_tiny

from customer_r1.cli import app
from customer_r1.cli.entry import LOG_DIR_ENV
from customer_r1.cli.params import (
    KINDS,
    input_kind,
    is_named_input,
    output_kind,
    param_constraints,
    where_of,
)

# ---------------------------------------------------------------------------- the app


def _commands() -> list[tuple[str, Any]]:
    """(``"eval predict"``, click command) of every leaf command."""
    out: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = dict(_commands())


def _params(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.name not in ("help", "install_completion", "show_completion")]


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Assets:
    """Valid inputs of every kind, built once (a tiny world, its examples, a tiny model)."""

    root: Path
    world: Path
    built: Path
    model: Path
    preds: Path
    run: Path
    recipe: Path
    personas: Path
    shards: Path

    def valid(self, kind: str) -> str:
        return str({
            "opera": self.world, "world": self.world, "ceilings": self.world, "built": self.built,
            "preds": self.preds, "run": self.run, "click_types": self.built / "build.json",
            "recipe": self.recipe, "model": self.model, "tokenizer": self.model,
            "personas": self.personas, "sim_shards": self.shards,
            "sessions": self.shards,  # a finished (merged) simulation run
        }[kind])

    def fresh(self, name: str = "x") -> Path:
        d = self.root / "scratch" / uuid.uuid4().hex[:8]
        d.mkdir(parents=True)
        return d / name


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assets]:
    from customer_r1.data.examples import BuildConfig, read_examples, write_examples
    from customer_r1.data.opera import load_opera
    from customer_r1.evaluation.predict import append_jsonl, pred_row
    from customer_r1.world import WorldConfig, export_world, generate_world

    root = tmp_path_factory.mktemp("cli-errors")
    world = root / "world"
    export_world(generate_world(WorldConfig(users=4, sessions_per_user=3, population=50)), str(world))
    built = root / "built"
    write_examples(load_opera(world), BuildConfig(tokenizer=None, token_budget=None, progress=False), built)
    model = save_tiny(root / "model")
    run = root / "run"
    run.mkdir()
    preds = run / "preds.jsonl"
    with preds.open("w", encoding="utf-8") as fh:
        append_jsonl(fh, [pred_row(e, completion=e["completion"][0]["content"], mode="free")
                          for e in read_examples(built, "test")])
    recipe = root / "recipe.yaml"
    recipe.write_text(f"dataset_path: {built}\nmodel_name_or_path: {model}\n")
    personas = root / "personas.jsonl"
    personas.write_text("".join(json.dumps({"user_id": u.user_id, "survey": u.survey}) + "\n"
                                for u in load_opera(world).users.values()))
    from customer_r1.sim.simulate import simulate

    shards = root / "sim"
    for i in range(2):
        simulate(world=world, out=shards, policy="world", shard=(i, 2), progress=False)
    env = {"HF_HUB_OFFLINE": "1", LOG_DIR_ENV: str(root / "logs"), "OMP_NUM_THREADS": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield Assets(root, world, built, model, preds, run, recipe, personas, shards)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
    return dst


def _missing(a: Assets) -> str:
    return str(a.root / "no-such-place" / "input")


def _empty_dir(a: Assets) -> str:
    d = a.fresh("empty")
    d.mkdir()
    return str(d)


def _empty_file(name: str) -> Callable[[Assets], str]:
    def make(a: Assets) -> str:
        f = a.fresh(name)
        f.write_bytes(b"")
        return str(f)
    return make


def _text_file(a: Assets) -> str:
    f = a.fresh("notes.txt")
    f.write_text("not what was asked for\n")
    return str(f)


def _dir_with_junk(a: Assets) -> str:
    d = a.fresh("junk")
    d.mkdir()
    (d / "notes.txt").write_text("hello\n")
    return str(d)


def _opera_truncated(a: Assets) -> str:
    d = _copy(a.world, a.fresh("world"))
    for f in (d / "OPeRA_filtered" / "action").glob("*.parquet"):
        _truncate(f)
    return str(d)


def _world_bad_json(a: Assets) -> str:
    d = _copy(a.world, a.fresh("world"))
    _truncate(d / "world" / "world.json")
    return str(d)


def _world_bad_policy(a: Assets) -> str:
    d = _copy(a.world, a.fresh("world"))
    for f in (d / "world").glob("policy_*.parquet"):
        _truncate(f)
    return str(d)


def _built_truncated_dir(a: Assets) -> str:
    d = _copy(a.built, a.fresh("built"))
    for f in d.glob("*.parquet"):
        _truncate(f)
    return str(d)


def _built_truncated_file(a: Assets) -> str:
    return str(_truncate(_copy(a.built / "test.parquet", a.fresh("test.parquet"))))


def _jsonl_bad_line(a: Assets) -> str:
    f = _copy(a.preds, a.fresh("preds.jsonl"))
    lines = f.read_text().splitlines()
    lines.insert(1, '{"example_id": "cut mid')
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def _run_bad_preds(a: Assets) -> str:
    d = a.fresh("run")
    d.mkdir()
    (d / "preds.jsonl").write_text(Path(_jsonl_bad_line(a)).read_text())
    return str(d)


def _run_empty_preds(a: Assets) -> str:
    d = a.fresh("run")
    d.mkdir()
    (d / "preds.jsonl").write_bytes(b"")
    return str(d)


def _build_json_truncated(a: Assets) -> str:
    return str(_truncate(_copy(a.built / "build.json", a.fresh("build.json"))))


def _yaml(text: str) -> Callable[[Assets], str]:
    def make(a: Assets) -> str:
        f = a.fresh("recipe.yaml")
        f.write_text(text)
        return str(f)
    return make


def _model_config_only(a: Assets) -> str:
    d = a.fresh("ckpt")
    d.mkdir()
    (d / "config.json").write_text((a.model / "config.json").read_text())
    return str(d)


def _personas_bad_line(a: Assets) -> str:
    f = _copy(a.personas, a.fresh("personas.jsonl"))
    f.write_text(f.read_text() + '{"user_id": "cut mid\n')
    return str(f)


def _shards_bad_run(a: Assets) -> str:
    d = _copy(a.shards, a.fresh("sim"))
    _truncate(d / "shards" / "1-of-2" / "run.json")
    return str(d)


def _sessions_bad_line(a: Assets) -> str:
    d = _copy(a.shards, a.fresh("sim"))
    lines = (d / "sessions.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    (d / "sessions.jsonl").write_text("\n".join(lines) + "\n")
    return str(d)


def _sessions_unfinished(a: Assets) -> str:
    d = a.fresh("sim")
    d.mkdir()
    (d / "sessions.jsonl").write_text((a.shards / "sessions.jsonl").read_text())
    return str(d)


def _hub_id(a: Assets) -> str:
    return "no-such-org/no-such-model-" + uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Assets], str]


COMMON = [Case("missing", _missing)]
#: How to break an input of each kind. Every kind in params.KINDS must be here.
CASES: dict[str, list[Case]] = {
    "opera": [*COMMON, Case("empty-dir", _empty_dir), Case("a-file", _text_file),
              Case("no-layout", _dir_with_junk), Case("truncated-parquet", _opera_truncated)],
    "world": [*COMMON, Case("empty-dir", _empty_dir), Case("not-a-world", _dir_with_junk),
              Case("truncated-json", _world_bad_json), Case("truncated-policy", _world_bad_policy)],
    "ceilings": [*COMMON, Case("empty-dir", _empty_dir), Case("empty-file", _empty_file("world.json")),
                 Case("truncated-json", _world_bad_json)],
    "built": [*COMMON, Case("empty-dir", _empty_dir), Case("empty-parquet", _empty_file("test.parquet")),
              Case("truncated-parquet", _built_truncated_file), Case("truncated-dir", _built_truncated_dir),
              Case("no-parquet", _dir_with_junk)],
    "preds": [*COMMON, Case("empty-file", _empty_file("preds.jsonl")), Case("a-dir", _empty_dir),
              Case("bad-jsonl-line", _jsonl_bad_line)],
    "run": [*COMMON, Case("empty-dir", _empty_dir), Case("empty-preds", _run_empty_preds),
            Case("bad-jsonl-line", _run_bad_preds)],
    "click_types": [*COMMON, Case("empty-file", _empty_file("build.json")),
                    Case("dir-without-build-json", _dir_with_junk),
                    Case("truncated-json", _build_json_truncated)],
    "recipe": [*COMMON, Case("empty-file", _empty_file("recipe.yaml")), Case("a-dir", _empty_dir),
               Case("bad-yaml", _yaml("a: [1, 2\nb: {\n")), Case("a-list", _yaml("- 1\n- 2\n")),
               Case("wrong-key", _yaml("no_such_setting_anywhere: 3\n"))],
    "model": [*COMMON, Case("empty-dir", _empty_dir), Case("a-file", _text_file),
              Case("config-only", _model_config_only), Case("hub-id-offline", _hub_id)],
    "tokenizer": [*COMMON, Case("empty-dir", _empty_dir), Case("hub-id-offline", _hub_id)],
    "personas": [*COMMON, Case("empty-file", _empty_file("personas.jsonl")), Case("a-dir", _empty_dir),
                 Case("bad-jsonl-line", _personas_bad_line)],
    "page_kinds": [*COMMON, Case("empty-file", _empty_file("kinds.yaml")), Case("a-dir", _empty_dir),
                   Case("bad-yaml", _yaml("a: [1, 2\nb: {\n")), Case("a-list", _yaml("- 1\n- 2\n")),
                   Case("unknown-kind", _yaml("'/p/*': productpage\n"))],
    "words": [*COMMON, Case("empty-file", _empty_file("words.txt")), Case("a-dir", _empty_dir),
              Case("only-comments", _yaml("# nothing\n\n"))],
    "sim_shards": [*COMMON, Case("empty-dir", _empty_dir), Case("no-shards", _dir_with_junk),
                   Case("truncated-run-json", _shards_bad_run)],
    "sessions": [*COMMON, Case("empty-dir", _empty_dir), Case("a-file", _text_file),
                 Case("no-sessions", _dir_with_junk), Case("unfinished-run", _sessions_unfinished),
                 Case("bad-sessions-line", _sessions_bad_line)],
}

#: Options a command needs besides its required ones to get past its own checks (one of
#: --model/--endpoint, one of --tiny/--smollm2, a policy): by kind (a fixture) or as text.
EXTRA: dict[str, dict[str, tuple[str, str]]] = {
    "eval predict": {"--model": ("kind", "model")},
    "data rationales": {"--model": ("kind", "model")},
    "eval ablate": {"--model": ("kind", "model")},
    "model init": {"--tiny": ("flag", "")},
    "sim run": {"--policy": ("text", "world")},
    "sim ab": {"--policy": ("text", "world"), "--treatment": ("text", "no_deals")},
}


# ---------------------------------------------------------------------------- argv


def _opt(param: Any) -> str:
    return max(param.opts, key=len)


def _valid_value(param: Any, a: Assets) -> str | None:
    kind = input_kind(param)
    if kind is not None:
        value = a.valid(kind)
        return f"x={value}" if is_named_input(param) else value
    out = output_kind(param)
    if out is not None:
        return str(a.fresh("out.json" if out == "file" else "out"))
    c = param_constraints(param)
    if c["choices"]:
        return str(c["choices"][0])
    if c["min"] is not None:
        return str(c["min"])
    return "1" if c["number"] else "x"


def build_argv(path: str, cmd: Any, a: Assets, override: dict[str, str]) -> list[str]:
    """A valid command line for ``cmd`` (required parameters and EXTRA), with ``override``
    (parameter name -> value) laid over it."""
    args: list[str] = []
    opts: list[str] = []
    extra = EXTRA.get(path, {})
    for p in _params(cmd):
        given = p.name in override
        if p.param_type_name == "argument":
            args.append(override[p.name] if given else str(_valid_value(p, a)))
            continue
        spec = next((extra[o] for o in p.opts if o in extra), None)
        if given:
            opts += [_opt(p), override[p.name]]
        elif spec is not None:
            how, what = spec
            if how == "flag":
                opts.append(_opt(p))
            else:
                opts += [_opt(p), a.valid(what) if how == "kind" else what]
        elif p.required:
            opts += [_opt(p), str(_valid_value(p, a))]
    return [*path.split(), *opts, *args]


# ---------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Probe:
    """One bad value for one parameter of one command."""

    command: str
    param: str
    case: str
    value: Callable[[Assets], str]

    @property
    def id(self) -> str:
        return f"{self.command}:{self.param}:{self.case}"


def _probes() -> list[Probe]:
    out: list[Probe] = []
    for path, cmd in COMMANDS.items():
        for p in _params(cmd):
            where = where_of(p)
            kind = input_kind(p)
            if kind is not None:
                named = is_named_input(p)
                for c in CASES.get(kind, []):
                    make = (lambda a, m=c.make: "real=" + m(a)) if named else c.make
                    out.append(Probe(path, p.name, f"{where} {kind} {c.name}", make))
                if named:
                    out.append(Probe(path, p.name, f"{where} no-equals", lambda a: "just-a-path"))
            ok = output_kind(p)
            if ok is not None:
                out.append(Probe(path, p.name, f"{where} output-wrong-kind",
                                 (lambda a: str(Path(_text_file(a)))) if ok == "dir" else _empty_dir))
                out.append(Probe(path, p.name, f"{where} output-under-a-file",
                                 lambda a: str(Path(_text_file(a)) / "sub" / "x")))
            c = param_constraints(p)
            if c["choices"]:
                out.append(Probe(path, p.name, f"{where} bad-choice", lambda a: "not-a-choice"))
            num = c["number"]
            if c["min"] is not None:
                low = c["min"] - (0.5 if num is float else 1)
                out.append(Probe(path, p.name, f"{where} below-min", lambda a, v=low: str(v)))
            if c["max"] is not None:
                high = c["max"] + (0.5 if num is float else 1)
                out.append(Probe(path, p.name, f"{where} above-max", lambda a, v=high: str(v)))
    return out


PROBES = _probes()


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """A case that is not refused would run the command for real: stop it."""
    def _alarm(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: the bad input was not refused")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def assert_one_line(code: int, out: str, err: str, names: list[str], argv: list[str]) -> str:
    """Exit 2, exactly one ``error:`` line on stderr naming one of ``names``, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    shown = f"argv: {argv}\nstdout: {out[-1500:]}\nstderr: {err[-3000:]}"
    assert "Traceback" not in out + err, shown
    assert code == 2, shown
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    assert any(n and n in lines[0] for n in names), f"names none of {names}\n{shown}"
    return lines[0]


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_bad_input_is_one_line(probe: Probe, assets: Assets) -> None:
    cmd = COMMANDS[probe.command]
    param = next(p for p in _params(cmd) if p.name == probe.param)
    value = probe.value(assets)
    argv = build_argv(probe.command, cmd, assets, {probe.param: value})
    with _deadline(120):
        code, out, err = invoke(argv)
    assert_one_line(code, out, err, [where_of(param), value, value.split("=", 1)[-1]], argv)


# ---------------------------------------------------------------------------- coverage


def test_every_kind_has_cases() -> None:
    used = {input_kind(p) for _, cmd in COMMANDS.items() for p in _params(cmd)} - {None}
    missing = sorted((used | set(KINDS)) - set(CASES))
    assert not missing, f"input kinds without cases in tests/test_cli_errors.py CASES: {missing}"
    assert all(len(CASES[k]) >= 3 for k in CASES), "each kind: missing, empty and a corrupt case at least"


def _mentions_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    return any(_mentions_path(a) for a in typing.get_args(annotation))


def test_path_parameters_are_declared() -> None:
    """A ``Path`` parameter with no input or output kind would escape every check here."""
    undeclared = []
    for path, cmd in COMMANDS.items():
        hints = typing.get_type_hints(inspect.unwrap(cmd.callback), include_extras=True)
        for p in _params(cmd):
            if _mentions_path(hints.get(p.name)) and not (input_kind(p) or output_kind(p)):
                undeclared.append(f"{path} {where_of(p)}")
    assert not undeclared, (
        "declare these with customer_r1.cli.params.input_option/input_argument (with a kind) "
        f"or output_option: {undeclared}")


def test_probes_cover_every_command() -> None:
    covered = {p.command for p in PROBES}
    bare = [c for c in COMMANDS if c not in covered and any(
        input_kind(p) or output_kind(p) for p in _params(COMMANDS[c]))]
    assert not bare and len(PROBES) > 100


def test_choices_mirror_the_library() -> None:
    """The CLI's choice enums spell what the library accepts."""
    from customer_r1.cli.data_build import OperaConfig, PersonaModeChoice, PromptStyle
    from customer_r1.cli.eval_ablate import Variant
    from customer_r1.data.examples import PROMPT_STYLES
    from customer_r1.data.opera import CONFIGS
    from customer_r1.data.persona import PERSONA_MODES
    from customer_r1.evaluation.ablate import VARIANTS

    assert [c.value for c in OperaConfig] == list(CONFIGS)
    assert [c.value for c in PersonaModeChoice] == list(PERSONA_MODES)
    assert [c.value for c in PromptStyle] == list(PROMPT_STYLES)
    assert [c.value for c in Variant] == list(VARIANTS)


# ---------------------------------------------------------------------------- messages


def test_model_paths_say_what_is_wrong(assets: Assets) -> None:
    base = ["eval", "predict", "--data", str(assets.built), "--out", str(assets.fresh("p.jsonl"))]
    code, out, err = invoke([*base, "--model", "/nonexistent"])
    assert "no model at /nonexistent" in assert_one_line(code, out, err, ["--model"], base)
    code, out, err = invoke([*base, "--model", _model_config_only(assets)])
    line = assert_one_line(code, out, err, ["--model"], base)
    assert "missing weights" in line and "a tokenizer" in line and "missing config.json" not in line
    code, out, err = invoke([*base, "--model", "org/not-here"])
    line = assert_one_line(code, out, err, ["--model"], base)
    assert "no local directory org/not-here and the Hugging Face Hub is unreachable" in line
    code, out, err = invoke([*base, "--endpoint", "http://127.0.0.1:9/v1", "--model-name", "m"])
    assert "cannot connect" in assert_one_line(code, out, err, ["--endpoint"], base)


def test_a_budget_too_small_is_a_user_error(assets: Assets) -> None:
    """A prompt that cannot fit even without pages is the budget the user chose, not a bug:
    one line naming --budget, the session and step, and what to change."""
    argv = ["data", "build", str(assets.world), "--out", str(assets.fresh("b")), "--tokenizer",
            str(assets.model), "--budget", "40", "--split", "test"]
    code, out, err = invoke(argv)
    line = assert_one_line(code, out, err, ["--budget"], argv)
    assert "over the budget of 40" in line and "session " in line and "--max-history-steps" in line
    assert "unexpected" not in line


def test_unexpected_error_is_logged(assets: Assets, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug: one line naming the exception and the saved traceback; --debug prints it."""
    import customer_r1.evaluation.report as report

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(report, "evaluate_run", boom)
    code, _, err = invoke(["eval", "score", str(assets.preds)])
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: unexpected RuntimeError: boom second line")
    log = Path(lines[0].split("full traceback in ")[1].split(")")[0])
    assert log.parent == assets.root / "logs" and "raise RuntimeError" in log.read_text()
    code, _, err = invoke(["eval", "--debug", "score", str(assets.preds)])
    assert code == 1 and "Traceback" in err and "raise RuntimeError" in err
    monkeypatch.setenv("CUSTOMER_R1_DEBUG", "1")
    code, _, err = invoke(["eval", "score", str(assets.preds)])
    assert code == 1 and "Traceback" in err


def test_interrupt_is_one_line(assets: Assets, monkeypatch: pytest.MonkeyPatch) -> None:
    import customer_r1.evaluation.report as report

    def interrupted(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "evaluate_run", interrupted)
    code, _, err = invoke(["eval", "score", str(assets.preds)])
    assert code == 130 and [x for x in err.splitlines() if x.strip()] == ["error: interrupted"]


def test_nothing_half_written(assets: Assets, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output written whole is renamed into place: a failure leaves the old one (or
    none) and no temporary behind."""
    import customer_r1.evaluation.report as report

    out = assets.fresh("report")
    code, _, err = invoke(["eval", "report", str(assets.run), "--out", str(out)])
    assert code == 0, err
    before = (out / "report.md").read_text()

    def fail(*args: Any, **kw: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "plot_summary", fail)
    code, _, err = invoke(["eval", "report", str(assets.run), "--out", str(out)])
    assert code == 1
    assert (out / "report.md").read_text() == before
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------------------- real entry point


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["data", "build", "/nonexistent", "--out", "{tmp}/b"], "no such file or folder /nonexistent"),
        (["model", "init", "--tiny", "--data", "/nonexistent", "--out", "{tmp}/m"],
         "no such file or folder /nonexistent (--data)"),
        (["eval", "predict", "--model", "/nonexistent", "--data", "{built}", "--out", "{tmp}/p.jsonl"],
         "no model at /nonexistent (--model)"),
        (["eval", "motives", "{preds}", "--world", "/nonexistent"], "no such file or folder /nonexistent"),
        (["--debug", "eval", "score", "{preds}", "--split"], "requires an argument"),
    ],
    ids=["data-build", "model-init", "eval-predict", "eval-motives", "usage-error"],
)
def test_installed_script(args: list[str], expect: str, assets: Assets, tmp_path: Path) -> None:
    argv = [a.format(tmp=tmp_path, built=assets.built, preds=assets.preds) for a in args]
    proc = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=120,
                          env=cli_env(**{LOG_DIR_ENV: str(tmp_path / "logs")}), check=False)
    line = assert_one_line(proc.returncode, proc.stdout, proc.stderr, [expect], argv)
    assert expect in line
    assert not any(tmp_path.glob("*/*")), "a refused command wrote nothing"
