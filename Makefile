# `make test` is the one command that runs the whole suite on a fresh machine:
# it installs the system services the tests start (when missing), creates .venv,
# installs fleetdesk with every extra, then runs ruff, mypy and pytest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test lint typecheck unit system-packages venv agent demo clean mutation

test: system-packages venv lint typecheck unit

system-packages:
	@bash scripts/ensure-system-packages.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[collector,postgres,dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q -p no:cacheprovider

# Mutation testing (mutmut) of the security and failure paths: not part of `make test`
# (hours on a 2-core machine; results are kept in mutants/, so a re-run tests only what
# changed). Prints a JSON summary per package; `MUTATION_ARGS=dedup` narrows it to modules
# whose name contains a word, `MUTATION_ARGS=--report` only summarises. See docs/testing.md.
mutation: system-packages venv
	$(BIN)/python scripts/mutation.py $(MUTATION_ARGS)


# The whole product on this machine: a simulated fleet, the collector, a fault script and a
# service desk (docs/demo.md). Installs Mosquitto, snmpd and VictoriaMetrics when missing and
# root; without them the demo says so and uses its embedded broker. Ctrl-C stops it.
demo: venv
	@bash scripts/ensure-system-packages.sh demo || echo "make demo: going on without them"
	$(BIN)/fleetdesk demo

# Runs the edge agent with the example config; it needs an MQTT broker on 127.0.0.1:1883
# (installed here when missing and root, with mosquitto_sub and mosquitto_pub; Debian's
# mosquitto package starts one).
agent: venv
	@bash scripts/ensure-system-packages.sh agent || echo "make agent: needs a broker on 127.0.0.1:1883"
	$(BIN)/fleetdesk agent --config deploy/agent.example.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache mutants
