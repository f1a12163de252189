# shake -- build, tests, sanitizers, demo.
#   make          bin/shake (-O2)
#   make test     every test: unit (criterion) and integration (pytest, real servers)
#   make test-faults  the fault-injection suite (kill -9, failovers, network, slow target)
#   make asan     bin/shake and the unit tests under ASan + UBSan, in obj-asan/
#   make demo     a local source and a 3-master target cluster, then shake's main job
#   make deps     install missing Debian packages (apt-get, as root)

DEB_PACKAGES := gcc make pkg-config libhiredis-dev libev-dev libinih-dev libssl-dev openssl \
                libcriterion-dev liblzf-dev redis-server redis-tools python3 \
                python3-pytest python3-pytest-xdist python3-redis libpcre2-dev
PKGS := hiredis liblzf inih openssl libpcre2-8

CC ?= cc
PYTHON ?= /usr/bin/python3
# Integration tests run this many at a time (pytest-xdist); each has its own servers.
PYTEST_JOBS ?= 2
MODE ?= release
ifeq ($(MODE),asan)
OBJDIR := obj-asan
BINDIR := obj-asan/bin
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
OBJDIR := obj
BINDIR := bin
OPT := -O2 -g
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -I. $(OPT) $(EXTRA_CFLAGS)
LDLIBS := -lev -lm -pthread
LDFLAGS := $(OPT)

SRC := $(wildcard shake/*.c reader/*.c writer/*.c filter/*.c conf/*.c)
LIB_SRC := $(filter-out shake/main.c,$(SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(OBJDIR)/%.o)
UNIT_SRC := $(wildcard test/unit/test_*.c)
SUPPORT_SRC := $(wildcard test/unit/support/*.c)
UNIT_BIN := $(UNIT_SRC:test/unit/%.c=$(BINDIR)/unit/%)

.PHONY: all deps test unit integration asan asan-test demo clean bench format test-faults

all: deps $(BINDIR)/shake

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$$missing" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BINDIR)/shake: $(OBJDIR)/shake/main.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(BINDIR)/unit/%: test/unit/%.c $(LIB_OBJ) $(SUPPORT_SRC)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(SUPPORT_SRC) $(LIB_OBJ) $(PKG_LIBS) -lcriterion $(LDLIBS)

unit: deps $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do $$t --jobs 1 || fail=1; done; exit $$fail

integration: deps $(BINDIR)/shake
	SHAKE_BIN=$(abspath $(BINDIR)/shake) $(PYTHON) -m pytest -q -p no:cacheprovider -n $(PYTEST_JOBS) test/integration $(PYTEST_ARGS)

test: unit integration

# Fault injection against real servers (test/faults, docs/faults.md): FAULTS=quick for the CI
# subset, FAULTS=name,name for some; FAULTS_STRICT=1 also fails on unexpected duplicates.
test-faults: deps $(BINDIR)/shake
	SHAKE_BIN=$(abspath $(BINDIR)/shake) $(PYTHON) test/faults/run.py --faults $(or $(FAULTS),all) $(FAULTS_ARGS)

asan:
	$(MAKE) MODE=asan all $(UNIT_BIN:bin/%=obj-asan/bin/%)

asan-test:
	$(MAKE) MODE=asan unit integration

demo: deps $(BINDIR)/shake
	$(PYTHON) test/demo.py --shake $(abspath $(BINDIR)/shake)

bench: deps $(BINDIR)/shake
	$(PYTHON) bench/bench.py --shake $(abspath $(BINDIR)/shake)

format:
	clang-format -i $(SRC) $(wildcard */*.h) $(UNIT_SRC)

clean:
	rm -rf obj obj-asan bin

-include $(shell find obj obj-asan -name '*.d' 2>/dev/null)

-include fuzz/fuzz.mk
