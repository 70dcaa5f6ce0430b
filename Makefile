# One set-up path for a fresh machine: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
# CPU build of torch that this workplace serves; on a GPU machine set TORCH_SPEC to your build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv test lint demo demo-ci bench clean

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[ros,offline,test,fleet]"
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports  # layers and no cycles (.importlinter)

test: lint
	$(PY) -m pytest -q

demo: venv
	$(PY) -m dpt_ros.demo --out demo_out

demo-ci: venv
	$(PY) -m dpt_ros.demo --out demo_out --frames 6 --check-classes

bench: venv
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_node.py

clean:
	rm -rf $(VENV) build *.egg-info demo_out
