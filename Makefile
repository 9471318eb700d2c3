# Entry points. `make demo` and `make test` are the README's two commands; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-smoke test test-all lint docs notebooks bench clean

$(STAMP): pyproject.toml requirements/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the CPU build (a bare `torch` pulls a multi-GB CUDA build).
	$(PY) -m pip install -q -c requirements/ci.txt torch
	$(PY) -m pip install -q -c requirements/ci.txt -e ".[all]"
	# Hydra (for the verl launch-command test) in its own folder: it pins antlr4 4.9, which breaks math-verify's LaTeX
	# parser in the venv (tests/integrations/test_verl_launch.py runs it in a child process from there).
	$(PY) -m pip install -q -c requirements/ci.txt --target $(VENV)/hydra hydra-core
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m reproduce --out runs/demo

demo-smoke: setup
	$(PY) -m reproduce --out runs/demo-smoke --smoke

test: setup
	$(PY) -m pytest -n 2 -q

test-all: setup
	$(PY) -m pytest -n 2 -q -m ""

lint: setup
	$(VENV)/bin/ruff check aent aent_cli configs setup.py toy llm reproduce tests benchmarks tutorials

docs: setup
	$(VENV)/bin/mkdocs build --strict

notebooks: setup
	$(VENV)/bin/jupytext --to ipynb tutorials/[0-9][0-9]_*.py

bench: setup
	$(PY) benchmarks/entropy_bench.py

clean:
	rm -rf $(VENV) site runs .pytest_cache .hypothesis
