"""`customer-r1 data` commands: each command lives in its own module."""

from __future__ import annotations

from customer_r1.cli.data_build import build
from customer_r1.cli.data_inspect import inspect
from customer_r1.cli.data_rationales import rationales
from customer_r1.cli.entry import new_app

app = new_app(no_args_is_help=True)
app.command("build")(build)
app.command("inspect")(inspect)
app.command("rationales")(rationales)
