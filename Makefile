# Transmute — every install step lives here; see README for the two commands that matter.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup protos run run-scaled test lint system clean

setup: system $(STAMP) protos

# System tools come from Debian packages: installed with apt-get as root, else we say how.
# ffmpeg/ffprobe run every media kind; espeak-ng makes the speech clips the tests transcribe.
SYSTEM_PACKAGES := ffmpeg:ffmpeg ffprobe:ffmpeg espeak-ng:espeak-ng
system:
	@missing=$$(for pair in $(SYSTEM_PACKAGES); do command -v $${pair%%:*} >/dev/null || echo $${pair##*:}; done | sort -u | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages; install them with: sudo apt-get install -y $$missing" >&2; exit 1; \
	  fi; \
	fi

# The editable install maps the generated `transmute` package only if gen/ exists when it runs:
# install (which brings grpcio-tools), generate, then re-register the package without deps.
$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else \
	    echo "Python's venv module is missing; install it with: sudo apt-get install -y python3-venv" >&2; exit 1; \
	  fi; \
	fi
	@test -x $(VENV)/bin/pip || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	PYTHON=$(PY) bash scripts/gen_protos.sh
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

# Generated code is not committed: gen/ is rebuilt from protos/ on every setup.
protos: $(STAMP)
	PYTHON=$(PY) bash scripts/gen_protos.sh

run: setup
	$(PY) -m stack

# The same API on :8080 as a cluster serves it: 3 NATS nodes, 2 API + 2 worker processes per family,
# 2 gateways, envoy in front (stack/__main__.py --scaled; state under var/scaled/). Both run targets
# restart a process that dies, with backoff, and stop only when one keeps crashing (stack/supervisor.py).
run-scaled: setup
	$(PY) -m stack --scaled

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy taskkit gateway media_service intelligence_service tracks_service stack

clean:
	rm -rf $(VENV) gen var .pytest_cache .mypy_cache .ruff_cache
