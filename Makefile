# card: PGXS build.  make; make install; make installcheck
EXTENSION = card
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" card.control)

MODULE_big = card
OBJS = src/card.o src/keys.o src/crypto.o src/pan.o src/status.o \
       src/order.o src/lifecycle.o src/activation.o src/validate.o src/plans.o \
       src/authorize.o src/event.o src/tenancy.o src/link.o src/pin.o src/reveal.o \
       src/replace.o src/rotate.o src/pin_try.o src/chain.o src/visible.o src/wakeup.o \
       src/shard.o src/consumer.o src/keyread.o

# The install script of the default version is built from one SQL source
# per concept, beside its C file, in this order (each file's objects need
# only those of the files before it).  A source holds its concept's types,
# tables, functions, privileges and comments.
SQL_SOURCES = src/card.sql src/shard.sql src/programme.sql src/tenancy.sql src/account.sql \
              src/status.sql src/validate.sql src/order.sql src/pan.sql \
              src/lifecycle.sql src/chain.sql src/link.sql src/activation.sql \
              src/reveal.sql src/replace.sql src/pin.sql src/controls.sql \
              src/authorize.sql src/event.sql src/rotate.sql src/comments.sql
DATA_built = card--$(EXTVERSION).sql

# Updates stay hand-written: 1.0's install script (kept so that the upgrade
# test can start from it) and the delta to each later version.
DATA = updates/card--1.0.sql updates/card--1.0--1.1.sql updates/card--1.1--1.2.sql \
       updates/card--1.2--1.3.sql updates/card--1.3--1.4.sql \
       updates/card--1.4--1.5.sql updates/card--1.5--1.6.sql \
       updates/card--1.6--1.7.sql updates/card--1.7--1.8.sql \
       updates/card--1.8--1.9.sql updates/card--1.9--1.10.sql \
       updates/card--1.10--1.11.sql \
       updates/card--1.11--1.12.sql

PG_CPPFLAGS = -Isrc $(shell pkg-config --cflags libcrypto)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = $(shell pkg-config --libs libcrypto)

# pg_regress suites in sql/ + expected/
REGRESS = setup order lifecycle activation idempotency expiry errors controls funding events keys tenancy reveal replace pin rotate json guardrails shard
REGRESS_OPTS = --load-extension=card

# isolation specs in test/specs, expected output in test/expected
ISOLATION = lifecycle-race activation-race order-race order-account-race funding-race hold-race events reveal-race replace-race events-tenancy chain-race visibility-cache events-wait consumer-ack expiry-race
ISOLATION_OPTS = --inputdir=test --load-extension=card

# JIT bitcode is of no use here and would need clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/card.h src/facts.h

card--$(EXTVERSION).sql: $(SQL_SOURCES) src/facts.sed card.control Makefile
	{ printf '%s\n\n' '/* card--$(EXTVERSION).sql: built by make from the SQL_SOURCES in src/; edit those */'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION card" to load this file. \quit'; \
	  for f in $(SQL_SOURCES); do printf '\n-- ==== %s ====\n\n' "$$f"; cat "$$f"; done; } \
	  | sed -f src/facts.sed > $@.tmp
	@if grep -n '@CARD_[A-Z_]*@' $@.tmp; then echo "$@: a fact above is not in src/facts.h" >&2; rm -f $@.tmp; exit 1; fi
	mv $@.tmp $@

# The facts of src/facts.h as sed substitutions for the SQL sources.
src/facts.sed: src/facts.c src/facts.h
	$(CC) -Wall -Wextra -Werror -o src/facts src/facts.c
	src/facts > $@

# The feed consumer, a libpq client (not part of the server module).
PG_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir)
PG_LIBDIR := $(shell $(PG_CONFIG) --libdir)
CONSUMER = consumer/card-consumer

all: $(CONSUMER)

$(CONSUMER): consumer/card_consumer.c
	$(CC) -O2 -Wall -Wextra -Werror -I$(PG_INCLUDEDIR) -o $@ $< -L$(PG_LIBDIR) -lpq

# The HTTP API and hosted pages (DESIGN.md section 13): libmicrohttpd,
# libpq, json-c (is a body one JSON object) and OpenSSL (token hashes).
SERVER = server/card-server
SERVER_SOURCES = server/main.c server/http.c server/api.c server/pages.c \
                 server/pool.c server/tokens.c

all: $(SERVER)

$(SERVER): $(SERVER_SOURCES) server/server.h
	$(CC) -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -I$(PG_INCLUDEDIR) \
	  $(shell pkg-config --cflags libmicrohttpd json-c) -o $@ $(SERVER_SOURCES) \
	  -L$(PG_LIBDIR) -lpq $(shell pkg-config --libs libmicrohttpd json-c libcrypto) -lpthread

# Both programs go beside PostgreSQL's own (pg_config --bindir).
install: install-programs
install-programs: $(CONSUMER) $(SERVER)
	$(INSTALL_PROGRAM) $(CONSUMER) $(SERVER) '$(DESTDIR)$(bindir)/'

clean: clean-consumer
clean-consumer:
	rm -f $(CONSUMER) $(SERVER) src/facts src/facts.sed

# The hot paths against their plain-SQL twins (bench/run; not a test).
bench:
	bench/run
bench-quick:
	bench/run --quick
bench-proxy:
	bench/proxy
.PHONY: bench bench-quick bench-proxy
