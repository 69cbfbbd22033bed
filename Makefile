# card: PGXS build.  make; make install; make installcheck
EXTENSION = card
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" card.control)

MODULE_big = card
OBJS = src/card.o src/keys.o src/crypto.o src/pan.o src/status.o \
       src/order.o src/lifecycle.o src/activation.o src/validate.o src/plans.o \
       src/authorize.o src/event.o src/tenancy.o src/link.o src/pin.o src/reveal.o \
       src/replace.o src/rotate.o src/pin_try.o src/chain.o

# Version 1.0's script and the delta to each later version; a fresh install
# of the default version runs the same path (CREATE EXTENSION finds it).
DATA = card--1.0.sql card--1.0--1.1.sql card--1.1--1.2.sql

PG_CPPFLAGS = -Isrc $(shell pkg-config --cflags libcrypto)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = $(shell pkg-config --libs libcrypto)

# pg_regress suites in sql/ + expected/
REGRESS = setup order lifecycle activation idempotency expiry errors controls funding events keys tenancy reveal replace pin rotate
REGRESS_OPTS = --load-extension=card

# isolation specs in test/specs, expected output in test/expected
ISOLATION = lifecycle-race activation-race order-race funding-race hold-race events reveal-race replace-race events-tenancy chain-race
ISOLATION_OPTS = --inputdir=test --load-extension=card

# JIT bitcode is of no use here and would need clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/card.h

# The feed consumer, a libpq client (not part of the server module).
PG_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir)
PG_LIBDIR := $(shell $(PG_CONFIG) --libdir)
CONSUMER = consumer/card-consumer

all: $(CONSUMER)

$(CONSUMER): consumer/card_consumer.c
	$(CC) -O2 -Wall -Wextra -Werror -I$(PG_INCLUDEDIR) -o $@ $< -L$(PG_LIBDIR) -lpq

clean: clean-consumer
clean-consumer:
	rm -f $(CONSUMER)
