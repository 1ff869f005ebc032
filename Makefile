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

# The sans-I/O hot path compiled with mypyc (part of mypy): C extensions built next to their
# sources, which Python imports in their place. `make pure` removes them; the .py files are the
# fallback and are tested too (`make test` runs the unit tests on them as well).
COMPILED := radiusgw/radius/packet.py radiusgw/radius/attributes.py radiusgw/radius/crypto.py \
	radiusgw/radius/vsa.py radiusgw/engine/core.py radiusgw/engine/cache.py \
	radiusgw/engine/counters.py radiusgw/engine/droplog.py radiusgw/engine/dedup.py radiusgw/modes/group.py \
	radiusgw/modes/vpdn.py radiusgw/router.py radiusgw/refusal.py radiusgw/addresses.py \
	radiusgw/accounting.py radiusgw/authlog_records.py \
	radiusgw/auth/method.py radiusgw/auth/pap.py radiusgw/auth/chap.py radiusgw/auth/eap.py \
	radiusgw/auth/microsoft.py radiusgw/auth/mschap.py radiusgw/auth/md4.py \
	radiusgw/auth/des.py radiusgw/server/authlog_writer.py \
	radiusgw/store/authlog.py radiusgw/store/session_events.py radiusgw/client/core.py radiusgw/client/ids.py \
	radiusgw/client/answers.py radiusgw/proxy/client.py radiusgw/proxy/rewrite.py \
	radiusgw/proxy/upstream.py radiusgw/proxy/pool.py radiusgw/dynauth.py \
	radiusgw/server/datagrams.py radiusgw/server/inbound.py radiusgw/server/proxy_edge.py \
	radiusgw/config/model.py

.PHONY: run test unit pure venv peers lint bench clean

# The editable install puts the tree itself on the path ("compat" mode), not a finder for the
# package alone: mypyc's shared library for the compiled modules sits at the top of the tree
# (<hash>__mypyc...so), and the radiusgw command must find it from any directory.
EDITABLE := --config-settings editable_mode=compat

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(EDITABLE) -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The extensions of a previous build go first: one for a module no longer in COMPILED would
# shadow its edited source.
# With them, on Linux, the UDP edge's recvmmsg/sendmmsg (radiusgw/server/_mmsg.c); without it
# (another system, the pure-Python build) the edge uses the socket module's calls.
MMSG := radiusgw/server/_mmsg.c
PYINCLUDE = $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
EXTSUFFIX = $$($(PY) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

build/.compiled: $(VENV)/.installed $(COMPILED) $(MMSG) Makefile
	mkdir -p build
	find radiusgw -name '*.so' -delete; rm -f *__mypyc*.so
	$(VENV)/bin/mypyc $(COMPILED) >build/mypyc.log 2>&1 || { tail -30 build/mypyc.log; exit 1; }
	if [ "$$(uname -s)" = Linux ]; then $(CC) -O2 -Wall -Wextra -Werror -shared -fPIC \
		-I$(PYINCLUDE) -o radiusgw/server/_mmsg$(EXTSUFFIX) $(MMSG); fi
	touch $@

compiled: build/.compiled

# Back to the pure-Python modules: remove the extensions mypyc built in the tree.
pure:
	find radiusgw -name '*.so' -delete; rm -f *__mypyc*.so build/.compiled

# Runs the gateway on the example realms with the embedded SQLite store, after creating the
# example account alice@acme.example (password "wonderland") if it is not there yet.
run: venv compiled
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

# The whole suite on the compiled modules, then the unit tests on the pure-Python ones (a copy
# of the tree without the extensions, the venv and .git, which its PYTHONPATH puts first).
test: venv peers lint compiled
	$(VENV)/bin/pytest -q
	@pure=$$(mktemp -d) && tar --exclude='*.so' --exclude=./.venv --exclude=./build \
		--exclude=./.git -cf - . | tar -xf - -C $$pure \
		&& echo "the unit tests on the pure-Python modules ($$pure)" \
		&& cd $$pure && PYTHONPATH=$$pure $(CURDIR)/$(VENV)/bin/pytest -q -p no:cacheprovider \
		tests/unit; status=$$?; rm -rf $$pure; exit $$status

# The tests that need neither the Debian peers nor PostgreSQL: the sans-I/O core, the store on
# SQLite, the CLI. Half a minute, for the edit-test loop; `make test` runs everything.
unit: venv
	$(VENV)/bin/pytest -q tests/unit -m "not peers and not postgres"

# Side by side with FreeRADIUS (bench/run.py): needs cc, the peers, and matplotlib for the chart.
bench: venv peers compiled
	$(VENV)/bin/pip install --quiet $(EDITABLE) -e '.[test,bench]'
	$(PY) -m bench.run $(BENCH_ARGS)

clean: pure
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
