# One set-up path for a fresh machine: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
# CPU build of torch that this workplace serves; on a GPU machine set TORCH_SPEC to your build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv test lint demo demo-ci bench clean oracles

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[ros,offline,test,fleet]"
	touch $(STAMP)

# Test-only reference code (never a runtime dependency): the official Depth Anything 3
# package and the few modules its network and input code import, in their own directory;
# test/_da3_oracle.py puts it on sys.path (the DA3 parity tests skip without it).
ORACLES := .oracles
DA3_ORACLE_PKGS := depth-anything-3==0.1.1 einops addict omegaconf antlr4-python3-runtime==4.9.3 \
	"opencv-python-headless<5"

oracles: venv
	test -d $(ORACLES)/da3/depth_anything_3 || $(PIP) install --no-deps --target $(ORACLES)/da3 \
		$(DA3_ORACLE_PKGS) || echo "note: DA3 oracle not installed; its parity tests will skip"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports  # layers and no cycles (.importlinter)

test: lint oracles
	$(PY) -m pytest -q

demo: venv
	$(PY) -m dpt_ros.demo --out demo_out

demo-ci: venv
	$(PY) -m dpt_ros.demo --out demo_out --frames 6 --check-classes

bench: venv
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_node.py

clean:
	rm -rf $(VENV) build *.egg-info demo_out $(ORACLES)
