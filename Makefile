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
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

demo: setup
	$(PY) -m imagesearch.demo_catalog tuxpaint
	$(PY) -m tasks.run_all --catalog data/catalogs/tuxpaint/catalog.csv

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf data/model-repository data/runs data/serving-index
