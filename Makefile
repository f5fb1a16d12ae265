# haproxy-py: everything a run needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
CONFORMANCE := $(SHARED)/conformance
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all venv run test unit conformance check-samples docs bench clean install

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

## make install: the package (with its dependencies) under $(PREFIX)/lib/haproxy-py, the command,
## the SysV script, the systemd unit and a sample /etc/haproxy-py/haproxy.cfg (DESTDIR honoured)
SYSCONFDIR ?= /etc
INITDIR ?= $(SYSCONFDIR)/init.d
UNITDIR ?= /lib/systemd/system
install:
	$(PYTHON) -m pip install -q --no-compile --target "$(DESTDIR)$(PREFIX)/lib/haproxy-py" .
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(INITDIR)" "$(DESTDIR)$(SYSCONFDIR)/haproxy-py" \
		"$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(PREFIX)/share/doc/haproxy-py"
	printf '#!/bin/sh\nPYTHONPATH="%s$${PYTHONPATH:+:$$PYTHONPATH}" exec %s -m haproxy_py "$$@"\n' \
		"$(PREFIX)/lib/haproxy-py" "$$($(PYTHON) -c 'import sys; print(sys.executable)')" \
		> "$(DESTDIR)$(PREFIX)/bin/haproxy-py"
	chmod 755 "$(DESTDIR)$(PREFIX)/bin/haproxy-py"
	sed 's|^BIN=.*|BIN=$${BIN:-$(PREFIX)/bin/haproxy-py}|' init/haproxy-py > "$(DESTDIR)$(INITDIR)/haproxy-py"
	chmod 755 "$(DESTDIR)$(INITDIR)/haproxy-py"
	sed 's|/usr/local/bin/haproxy-py|$(PREFIX)/bin/haproxy-py|g' init/haproxy-py.service > "$(DESTDIR)$(UNITDIR)/haproxy-py.service"
	[ -e "$(DESTDIR)$(SYSCONFDIR)/haproxy-py/haproxy.cfg" ] || \
		install -m 644 samples/haproxy.cfg "$(DESTDIR)$(SYSCONFDIR)/haproxy-py/haproxy.cfg"
	install -m 644 README.md docs/keywords.md "$(DESTDIR)$(PREFIX)/share/doc/haproxy-py/" 2>/dev/null || \
		install -m 644 README.md "$(DESTDIR)$(PREFIX)/share/doc/haproxy-py/"
	@echo "installed; register the service with 'chkconfig --add haproxy-py' (RHEL) or 'update-rc.d haproxy-py defaults' (Debian)"
