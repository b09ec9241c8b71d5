# `make test` and `make demo` create or update .venv from requirements.txt, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: venv test demo bench clean

venv: $(INSTALLED)

# Reinstall only when the requirements or the package metadata change.
$(INSTALLED): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(INSTALLED)

test: venv
	$(BIN)/python -m pytest -q tests

demo: venv
	$(BIN)/python -m numpro demo --output demo_output

bench: venv
	$(BIN)/python benchmarks/bench_stamp.py
	$(BIN)/python benchmarks/eval_pipeline.py
	$(BIN)/python benchmarks/preprocess.py --repeats 3

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
