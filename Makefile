# fers-qgis: make setup | test | test-qgis | demo | eval | bench | package
# Works on a fresh Debian 12 machine: installs QGIS and GDAL from Debian, then a venv that sees their bindings.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
APT_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv python3-pip \
	python3-netcdf4 python3-h5py debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SCENE ?=
EVAL_SCENES ?= ../shared/data/eval
export QT_QPA_PLATFORM := offscreen

.PHONY: setup test test-qgis demo eval bench package clean

setup: $(STAMP) $(VENV)/bin/fers

$(STAMP): requirements.txt
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(APT_PACKAGES); }
	@test -x $(PYTHON) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# The console command `fers` (the command line, fers_qgis/cli/) of this checkout.
$(VENV)/bin/fers: scripts/fers $(STAMP)
	install -m 755 scripts/fers $@

test: setup
	$(PYTHON) -m pytest
	@if reason=$$($(PYTHON) -m scripts.qgis_versions --skip-reason); then echo "make test-qgis skipped: $$reason"; \
	else $(MAKE) --no-print-directory test-qgis; fi

# The plugin zip in QGIS 3.40 and 3.44 (Debian 13 roots built once and cached under ~/.cache/fers-qgis/roots).
test-qgis: package
	$(PYTHON) -m scripts.qgis_versions

demo: setup
	$(PYTHON) -m scripts.demo --scene "$(SCENE)" --out demo

eval: setup
	@test -d "$(EVAL_SCENES)" || { echo "No evaluation scenes at $(EVAL_SCENES) (set EVAL_SCENES=DIR)"; exit 1; }
	@mkdir -p build; for detector in $$($(PYTHON) -c "from training.evaluate import runnable_detectors; print(*runnable_detectors())"); do \
	  $(PYTHON) -m training.evaluate --scenes "$(EVAL_SCENES)" --detector $$detector --json "build/eval_$$detector.json" || exit 1; \
	  echo; done

bench: setup
	$(PYTHON) -m benchmarks.bench

package: setup
	$(PYTHON) -m scripts.package --out dist

clean:
	rm -rf build demo dist .pytest_cache
