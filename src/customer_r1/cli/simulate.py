"""The body of ``sim run`` lives in :mod:`customer_r1.sim.simulate` (library code never
imports the CLI); re-exported here for the commands and earlier callers."""

from customer_r1.sim.simulate import (  # noqa: F401
    POLICIES,
    _answers,
    _check_browser_options,
    _users,
    _variant,
    check_policy_args,
    load_personas,
    make_policy,
    simulate,
    vars_of,
)
