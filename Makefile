# GNU make. `make run` starts the whole stack on this machine; `make test` is what CI runs (.ci/run).
# Works on a fresh Debian 12 with Python 3.11, Java 17 and Maven; installs what else is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= $(shell command -v python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
# Stamps: redo a step only when its input changed.
INSTALLED := $(VENV)/.installed
KAFKA_JARS := var/kafka/libs/.pom-sha256
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
PYTEST_ARGS ?=

.PHONY: help install system-packages test lint run smoke bench chaos clean distclean

help:
	@echo "make install    venv + dependencies, missing Debian packages, Kafka broker jars (no-op when done)"
	@echo "make run        the whole stack: Kafka, mail sink, ledger, balance, notify, web (Procfile via honcho)"
	@echo "make test       ruff and mypy, then unit, integration and e2e tests against real Kafka/PostgreSQL/SMTP/Chromium"
	@echo "make smoke      start the stack as make run does, check every /health and the mail sink, stop"
	@echo "make deploy-check  build the image, bring compose.yaml up with podman, check it end to end, take it down"
	@echo "make test-containers  one integration module on a testcontainers Kafka through podman's socket"
	@echo "make bench      benchmarks"
	@echo "make chaos      the whole stack under load while its processes are SIGKILLed (CHAOS_KILLS=100)"
	@echo "make lint       ruff and mypy (strict on contracts/, messaging/ and the pure domain modules)"
	@echo "make clean      remove local data under var/ (keeps the Kafka jars); distclean also removes .venv"

install: $(INSTALLED) $(KAFKA_JARS)

# Checked on every run (a few stat calls); apt only runs when something is actually missing.
system-packages:
	@missing=(); \
	[ -x /usr/bin/chromium ] || missing+=(chromium); \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql); \
	command -v java >/dev/null || missing+=(openjdk-17-jre-headless); \
	command -v mvn >/dev/null || missing+=(maven); \
	[ -x $(PY) ] || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv); \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing Debian packages: $${missing[*]}"; \
	  $(SUDO) apt-get update; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends "$${missing[@]}"; \
	fi

# What deploy-check and test-containers need besides: podman (runc: crun fails on hybrid cgroups here;
# netavark + aardvark-dns: containers resolve each other's names; iptables: netavark sets up a network's
# firewall with it, and podman only suggests it: without it compose fails with "netavark: No such file or
# directory"), docker-compose (drives podman through its Docker-compatible socket and honours depends_on
# conditions), mmdebstrap for the stand-in images.
deploy-packages: system-packages
	@missing=(); \
	for cmd in podman runc mmdebstrap docker-compose curl; do command -v $$cmd >/dev/null || missing+=($$cmd); done; \
	[ -x /usr/lib/podman/netavark ] || missing+=(netavark); \
	[ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns); \
	[ -x /usr/sbin/iptables ] || missing+=(iptables); \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing Debian packages: $${missing[*]}"; \
	  $(SUDO) apt-get update; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends "$${missing[@]}"; \
	fi

$(PY): | system-packages
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY) system-packages
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The broker's jars from Maven Central (infra/kafka/pom.xml), refetched when the pom changes.
$(KAFKA_JARS): infra/kafka/pom.xml | $(INSTALLED) system-packages
	$(PY) -m devstack.local_kafka --fetch-jars
	touch $@

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(PY) -m devstack.typecheck

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m devstack.typecheck
	RECIPROCITY_ENV=development $(VENV)/bin/pytest -p no:cacheprovider --junitxml=test-results/junit.xml \
	  tests/unit tests/integration tests/e2e $(PYTEST_ARGS)

# With KAFKA_BOOTSTRAP_SERVERS set, everything but the local broker starts and uses that cluster.
run: install
	@mkdir -p var/kafka var/mail
	@bash infra/banner.sh
	@# RECIPROCITY_ENV=development: the services accept their local default secrets (refused without it).
	@procs=""; \
	if [ -n "$${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then \
	  procs="$$(grep -E '^[A-Za-z0-9_-]+:' Procfile | cut -d: -f1 | grep -vx kafka | tr '\n' ' ')"; \
	fi; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONUNBUFFERED=1 RECIPROCITY_ENV=$${RECIPROCITY_ENV:-development} exec $(VENV)/bin/honcho -f Procfile start $$procs

# Builds the stand-in base images once (kept in podman's store), the project's image, runs compose.yaml.
deploy-check: install deploy-packages
	bash infra/deploy-check/run.sh

test-containers: install deploy-packages
	bash infra/deploy-check/testcontainers.sh

smoke: install
	bash infra/smoke.sh

bench: install
	$(PY) -m bench

# Not part of `make test`: about 15 minutes of the whole stack being killed; see bench/chaos/.
chaos: install $(KAFKA_JARS)
	$(PY) -m bench.chaos

clean:
	rm -rf test-results .pytest_cache .ruff_cache
	@# var/kafka/libs holds ~60 MB of jars that only change with infra/kafka/pom.xml: keep them.
	if [ -d var ]; then \
	  find var -mindepth 1 -maxdepth 1 ! -name kafka -exec rm -rf {} +; \
	  [ ! -d var/kafka ] || find var/kafka -mindepth 1 -maxdepth 1 ! -name libs -exec rm -rf {} +; \
	fi

distclean: clean
	rm -rf var $(VENV) build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
