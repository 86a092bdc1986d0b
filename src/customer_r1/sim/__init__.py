"""Closed-loop simulation: persona-conditioned shoppers run through a shop by any policy.

Laid out like BrowserGym + WebShop, above ``world``, ``data`` and ``evaluation`` and
imported by ``cli`` only:

* ``session``  one visitor's shop state machine (validation, page views), shared by
* ``env``      ``ShopEnv`` (reset/step, limits, errors in the observation) over a backend:
               in process, or ``http_env`` (``HttpShop``) against
* ``site``     the shop as a real web application (Starlette under uvicorn);
* ``policies`` ``Policy`` protocol: the world's own shopper, the page-kind baseline, a
               trained checkpoint (ranked, sampled) and an OpenAI-compatible endpoint;
* ``prompts``  step prompts from the same builder as training examples;
* ``runner``   K sessions in flight, resumable, sharded; sessions written in OPeRA's layout.
"""
