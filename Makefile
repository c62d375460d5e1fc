# The two commands: `make demo` (the whole loop on a real demo catalog) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONPATH := $(abspath .)

.PHONY: setup demo test lint airflow clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v chromium >/dev/null || { echo "installing Debian chromium (browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

# promtool (alert-rule tests) from Debian's prometheus package, unpacked into the venv: no service installed.
$(VENV)/bin/promtool: | $(STAMP)
	@tmp=$$(mktemp -d) && cd $$tmp && { apt-get download -qq prometheus 2>/dev/null || \
	  { apt-get update -qq && apt-get download -qq prometheus; }; } && dpkg -x prometheus_*.deb root && \
	  cp root/usr/bin/promtool $(abspath $(VENV))/bin/promtool && rm -rf $$tmp

setup: $(STAMP) $(VENV)/bin/promtool

# The whole loop: demo catalog -> one image_index DAG run (airflow dags test, local mode: every step a
# subprocess, a GitOps bump at the end) -> local deploy of the version git names -> serve until Ctrl-C.
demo: setup
	$(PY) -m imagesearch.demo_catalog tuxpaint
	$(PY) -m scripts.airflow_local dags-test
	$(PY) -m serving.demo

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# Airflow on this machine for dags/ and plugins/ (AIRFLOW_HOME: data/airflow); prints the UI URL and login; Ctrl-C stops it.
airflow: setup
	$(PY) -m scripts.airflow_local serve $(AIRFLOW_ARGS)

# Removes what make demo built (not the downloads); stops the demo server first.
clean:
	-$(PY) -m serving.deploy --stop
	rm -rf data/model-repository data/serving data/serving-index data/gitops.git data/airflow
