"""`customer-r1 eval` commands: each command lives in its own module."""

from __future__ import annotations

from customer_r1.cli.entry import new_app
from customer_r1.cli.eval_ablate import ablate
from customer_r1.cli.eval_predict import predict
from customer_r1.cli.eval_score import ablations, motives, report, score

app = new_app(no_args_is_help=True)
app.command("predict")(predict)
app.command("score")(score)
app.command("report")(report)
app.command("ablations")(ablations)
app.command("ablate")(ablate)
app.command("motives")(motives)
