# haproxy-py: everything a run needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
CONFORMANCE := $(SHARED)/conformance
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all venv run test unit conformance check-samples docs bench clean

all: venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## make run: two demo backends and haproxy-py on samples/demo.cfg, in the foreground (Ctrl-C stops all)
run: venv
	$(PY) samples/demo.py

## make test: the whole suite: unit and integration tests, then the conformance files that pass
test: venv
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory conformance

unit: venv
	$(PY) -m pytest -q

## make conformance: the files of ../shared/conformance listed in tests/conformance.txt
conformance: venv
	@if [ ! -d "$(CONFORMANCE)" ]; then echo "conformance suite not found at $(CONFORMANCE)"; exit 1; fi
	PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest -q -p no:cacheprovider -c $(CONFORMANCE)/pytest.ini \
		--rootdir $(CONFORMANCE) --lb "$(abspath $(VENV))/bin/haproxy-py" \
		$$(grep -v '^\s*#' tests/conformance.txt | grep . | sed 's|^|$(CONFORMANCE)/|')

check-samples: venv
	for f in samples/*.cfg; do $(VENV)/bin/haproxy-py -c -f $$f || exit 1; done

docs: venv
	$(PY) -m haproxy_py.config.docs > docs/keywords.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
