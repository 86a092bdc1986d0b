"""Closed-loop simulation: persona-conditioned shoppers run through a shop by any policy.

Laid out like BrowserGym + WebShop, above ``world``, ``data`` and ``evaluation`` and
imported by ``cli`` only:

* ``session``  one visitor's shop state machine (validation, page views), shared by
* ``env``      ``ShopEnv`` (reset/step, limits, errors in the observation) over a backend:
               in process, or ``http_env`` (``HttpShop``) against
* ``site``     the shop as a real web application (Starlette under uvicorn);
* ``browser``  ``BrowserShop``: the same backend API in headless Chromium (Playwright), on
               our shop or an allowlisted site, with ``simplify.js`` (the in-page
               simplifier), ``fence`` (the network allowlist, checked below the page) and
               ``checkout`` (no orders, payments, sign-ins or personal data on other sites);
* ``policies`` ``Policy`` protocol: the world's own shopper, the page-kind baseline, a
               trained checkpoint (ranked, sampled) and an OpenAI-compatible endpoint;
* ``prompts``  step prompts from the same builder as training examples;
* ``runner``   K sessions in flight, resumable, sharded; sessions written in OPeRA's layout;
* ``simulate`` the body of ``sim run`` (options -> world, personas, policy, runner);
* ``truth``    the world's shopper in memory: the same sessions, thousands a minute (A/B truth);
* ``ab``       A/B tests with common random numbers, placebo arms, ``run_ab`` (``sim ab``);
* ``stats``    per-session figures with bootstrap intervals over users;
* ``compare``  two sets of sessions scored as whole sessions (``sim compare``);
* ``report``   the HTML + markdown report a UX researcher reads (``sim report``).
"""
