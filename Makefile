# radiusgw: `make run` and `make test` do all the set-up on a fresh machine.
VENV     := .venv
PY       := $(VENV)/bin/python
RADIUSGW := $(VENV)/bin/radiusgw
DB       ?= radiusgw.db
LISTEN   ?= 127.0.0.1
# The Debian peers the tests talk to (radclient, FreeRADIUS, xl2tpd, eapol_test), FreeRADIUS's
# PostgreSQL driver (rlm_sql_postgresql: the bench's and tests' FreeRADIUS writing accounting
# to PostgreSQL) and the PostgreSQL the fleet tests start in a temporary directory
# (bench/postgres.py).
PG_BIN   := /usr/lib/postgresql/15/bin
PEERS    := /usr/bin/radclient /usr/sbin/freeradius /usr/sbin/xl2tpd /usr/bin/eapol_test \
	$(PG_BIN)/initdb $(PG_BIN)/pg_ctl /usr/lib/freeradius/rlm_sql_postgresql.so

.PHONY: run test unit venv peers lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Runs the gateway on the example realms with the embedded SQLite store, after creating the
# example account alice@acme.example (password "wonderland") if it is not there yet.
run: venv
	$(RADIUSGW) check --realms realms
	$(RADIUSGW) account add acme.example alice --password wonderland --framed-ip 10.0.0.5 \
		--db $(DB) --realms realms --exist-ok
	$(RADIUSGW) serve --realms realms --db $(DB) --listen $(LISTEN)

peers:
	@missing=""; for p in $(PEERS); do [ -e $$p ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing the Debian peers: freeradius freeradius-utils freeradius-postgresql xl2tpd eapoltest postgresql"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			freeradius freeradius-utils freeradius-postgresql xl2tpd eapoltest postgresql >/dev/null; \
		systemctl stop freeradius xl2tpd >/dev/null 2>&1 || true; \
		pg_ctlcluster 15 main stop >/dev/null 2>&1 || service postgresql stop >/dev/null 2>&1 || true; \
	fi

lint: venv
	$(VENV)/bin/ruff check radiusgw tests bench
	$(VENV)/bin/ruff format --check radiusgw tests bench
	$(VENV)/bin/mypy

test: venv peers lint
	$(VENV)/bin/pytest -q

# The tests that need neither the Debian peers nor PostgreSQL: the sans-I/O core, the store on
# SQLite, the CLI. Half a minute, for the edit-test loop; `make test` runs everything.
unit: venv
	$(VENV)/bin/pytest -q tests/unit -m "not peers and not postgres"

# Side by side with FreeRADIUS (bench/run.py): needs cc, the peers, and matplotlib for the chart.
bench: venv peers
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
