"""`customer-r1 eval score | report | ablations | motives`: plain functions the eval group registers.

They are not a Typer app of their own so ``cli/evaluate.py`` can mount them next to
``predict`` with ``app.command()(score)`` etc. Errors in the inputs are
:class:`~customer_r1.errors.UserError` from the option checks and the loaders: exit
code 2 and one line saying what is wrong, not a traceback. The scoring modules (numpy,
scikit-learn, matplotlib) are imported inside the commands so a wrong path is answered
before they load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from customer_r1.cli.params import input_argument, input_option, output_option

_ClickTypes = Annotated[
    Path | None,
    input_option(
        "click_types",
        "--click-types",
        help="build.json (or the built folder) whose click_type_lookup types predicted names; "
        "default: the preds' own gold name->type pairs.",
    ),
]
_Ceilings = Annotated[
    Path | None,
    input_option(
        "ceilings",
        "--ceilings",
        help="Synthetic WORLD_DIR (or world.json): compare exact match with its Bayes ceilings.",
    ),
]


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


def score(
    preds: Annotated[Path, input_argument("preds", help="preds.jsonl written by `eval predict`.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print all metrics as JSON.")] = False,
    click_types: _ClickTypes = None,
    ceilings: _Ceilings = None,
    split: Annotated[
        str | None, typer.Option(help="Split whose ceilings to use (default: the rows' own).")
    ] = None,
    out: Annotated[
        Path | None, output_option("--out", kind="file", help="Also write the JSON to this file.")
    ] = None,
) -> None:
    """Score predictions: exact match, action-type and click-type F1, session outcome, fidelity."""
    from rich.console import Console
    from rich.table import Table

    from customer_r1.evaluation.metrics import RULES, load_click_type_lookup
    from customer_r1.evaluation.report import evaluate_run, fmt
    from customer_r1.io import atomic_write_text

    lookup = load_click_type_lookup(click_types) if click_types else None
    result = evaluate_run(preds, lookup=lookup, ceilings=ceilings, split=split)
    assert result.scores is not None and result.fidelity is not None
    payload = {
        "preds": str(preds),
        "headline": result.headline(),
        "metrics": result.scores.to_dict(),
        "fidelity": result.fidelity.to_dict(),
    }
    if out is not None:
        atomic_write_text(out, _dump(payload) + "\n")
    if json_out:
        typer.echo(_dump(payload))
        return
    s = result.scores
    table = Table(title=f"{preds} ({s.n_examples} examples, mode: {', '.join(s.modes) or '?'})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("next-action exact match %", fmt(s.exact_match)),
        ("format validity %", fmt(s.format_validity)),
        ("action-type accuracy %", fmt(s.type_accuracy)),
        ("action-type macro-F1 %", fmt(s.type_macro_f1)),
        ("action-type weighted-F1 %", fmt(s.type_weighted_f1)),
        (f"click-type weighted-F1 % (n={s.n_click_steps})", fmt(s.click_type_weighted_f1)),
        (f"outcome accuracy % (sessions={s.n_sessions})", fmt(s.outcome_accuracy)),
        ("outcome weighted-F1 %", fmt(s.outcome_f1)),
        ("mean JS action type (bits)", fmt(result.fidelity.mean_js_action_type, False)),
        ("mean JS click type (bits)", fmt(result.fidelity.mean_js_click_type, False)),
    ]
    rows += [
        (f"exact match % | true {t} (n={v['n']})", fmt(v["exact_match"]))
        for t, v in s.exact_match_by_type.items()
    ]
    if result.fidelity.ceilings:
        c = result.fidelity.ceilings
        rows += [
            ("Bayes ceiling, persona %", fmt(c["ceiling_persona"])),
            ("Bayes ceiling, persona-blind %", fmt(c["ceiling_blind"])),
            ("EM / persona ceiling %", fmt(c["fraction_of_ceiling"])),
        ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(f"[dim]{RULES['outcome']}[/dim]", highlight=False)


def report(
    run_dirs: Annotated[
        list[Path],
        input_argument("run", help="Run folders, each with preds.jsonl (+ run.json label), or preds files."),
    ],
    out: Annotated[Path, output_option("--out", help="Folder to write report.md/json and PNGs.")],
    click_types: _ClickTypes = None,
    ceilings: _Ceilings = None,
) -> None:
    """Write one report (markdown table beside the paper's numbers, JSON, plots) for runs."""
    from customer_r1.evaluation.report import write_report

    path = write_report(run_dirs, out, ceilings=ceilings, click_types=click_types)
    typer.echo(str(path))


def ablations(
    run: Annotated[
        list[str],
        input_option(
            "run",
            "--run",
            named=True,
            help="NAME=PREDS (preds.jsonl or its run folder); repeat: real, none, shuffled, "
            "no_rationale, ...",
        ),
    ],
    out: Annotated[
        Path | None, output_option("--out", help="Write ablations.md and ablations.json here.")
    ] = None,
    baseline: Annotated[str, typer.Option(help="Run the deltas are taken against.")] = "real",
    click_types: _ClickTypes = None,
    ceilings: _Ceilings = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON, not markdown.")] = False,
) -> None:
    """Score the persona / rationale ablation runs side by side with deltas vs `real`."""
    from customer_r1.evaluation.ablations import parse_run_options, run_ablations
    from customer_r1.evaluation.metrics import load_click_type_lookup

    specs = parse_run_options(run)
    lookup = load_click_type_lookup(click_types) if click_types else None
    table = run_ablations(specs, baseline=baseline, lookup=lookup, ceilings=ceilings, out_dir=out)
    typer.echo(_dump(table.to_dict()) if json_out else table.to_markdown())


def motives(
    preds: Annotated[list[Path], input_argument("preds", help="preds.jsonl files (one column each).")],
    world: Annotated[
        Path, input_option("world", "--world", help="The synthetic WORLD_DIR the predictions are on.")
    ],
    split: Annotated[str, typer.Option(help="Split of the world's policy sidecar.")] = "test",
    out: Annotated[
        Path | None, output_option("--out", kind="file", help="Also write the table here.")
    ] = None,
) -> None:
    """Correct steps per motive of the synthetic world's policy, beside its Bayes and blind choices."""
    from customer_r1.errors import BadFile, MissingFile
    from customer_r1.evaluation.metrics import load_preds
    from customer_r1.evaluation.motives import expected_match, motive_breakdown, motive_markdown
    from customer_r1.io import atomic_write_text
    from customer_r1.world import ceilings_from_policy, load_policy

    sidecar = world / "world" / f"policy_{split}.parquet"
    if not sidecar.is_file():
        have = sorted(p.stem.removeprefix("policy_") for p in (world / "world").glob("policy_*.parquet"))
        raise MissingFile(f"no policy sidecar for split {split!r} in {world} (splits: {have or 'none'})",
                          where="--split")
    policy = list(load_policy(world, split).values())
    loaded = {str(p): load_preds(p) for p in preds}  # each file read once
    for label, rows in loaded.items():
        if not rows:
            raise BadFile(f"{label} holds no predictions", where="PREDS")
    runs = {label: motive_breakdown(rows, policy) for label, rows in loaded.items()}
    expected = {label: expected_match(rows, policy) for label, rows in loaded.items()}
    steps = {(r["session_id"], int(r["step_index"])) for r in next(iter(loaded.values()))}
    ceilings = ceilings_from_policy([r for r in policy if (r.session_id, r.step_index) in steps])
    md = motive_markdown(runs)
    blind, bayes = 100 * ceilings["ceiling_blind"], 100 * ceilings["ceiling_persona"]
    md += (
        "\nExact match in expectation over the world's policy (the probability it gave each predicted "
        f"action, averaged); on these steps the persona-blind ceiling is {blind:.1f} % and the Bayes "
        f"ceiling {bayes:.1f} %.\n\n"
    )
    md += "\n".join(f"- {label}: {100 * e['expected_exact_match']:.1f} %" for label, e in expected.items()
                    if e["expected_exact_match"] is not None) + "\n"
    if out is not None:
        atomic_write_text(out, md)
    typer.echo(md)
