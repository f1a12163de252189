# fuzz.mk -- libFuzzer targets (fuzz/fuzz_*.c), included from the Makefile.
#   make fuzz-deps   install clang-14 and libclang-rt-14-dev (apt-get, as root)
#   make fuzz        build every target and run each for FUZZ_SECONDS (default 60),
#                    FUZZ_JOBS at a time (default 1; CI uses 2, one per core); any
#                    crash, leak, timeout or broken invariant fails the run
#   make fuzz-build  build only (obj/fuzz/bin/fuzz_*)
#   make fuzz-rdb    one target (also fuzz-dump, fuzz-cmd_stream, fuzz-conf)
# Corpus: obj/fuzz/corpus/<target>/ grows across runs; it is seeded from
# fuzz/corpus/<target>/ (committed, tiny), the .rdb files of $(FUZZ_FIXTURES) and
# the repo's conf/*.ini. Findings land in obj/fuzz/artifacts/<target>/, logs in
# obj/fuzz/<target>.log. See docs/fuzzing.md.

# Read before the rules below so that including this file never changes `make`'s goal.
fuzz_saved_default_goal := $(.DEFAULT_GOAL)

FUZZ_PACKAGES := clang-14 libclang-rt-14-dev
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_FIXTURES ?= ../shared/fixtures/rdb
FUZZ_TARGETS := rdb dump cmd_stream conf
FUZZ_OUT := obj/fuzz
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -O1 -g -fno-omit-frame-pointer \
               $(FUZZ_SANITIZE)
FUZZ_RUN_FLAGS := -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
                  -detect_leaks=1 -print_final_stats=1 $(FUZZ_FLAGS)
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:symbolize=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The decoder targets link only what they reach (the RDB decoder and its blob
# readers, the command stream parser), so a build break elsewhere does not stop
# them. fuzz_conf links the whole library: conf.c calls into filter/ and shake/.
FUZZ_DECODER_SRC := $(wildcard reader/rdb_*.c) reader/listpack.c reader/ziplist.c \
                    reader/intset.c reader/zipmap.c reader/lzf.c reader/cmd_stream.c \
                    shake/entry.c shake/crc64.c
FUZZ_DECODER_OBJ := $(FUZZ_DECODER_SRC:%.c=$(FUZZ_OUT)/%.o)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_OUT)/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_OUT)/bin/fuzz_%)

# Kept between runs, so a rebuild after an edit recompiles only what changed.
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_DECODER_OBJ)

.PHONY: fuzz fuzz-deps fuzz-build $(FUZZ_TARGETS:%=fuzz-%)

# After `deps`, never beside it: two apt-get runs at once fight over the dpkg lock.
fuzz-deps: deps
	@missing=""; for p in $(FUZZ_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make fuzz-deps: run as root to install:$$missing" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BINS)

# Library objects get coverage (fuzzer-no-link); only the target links libFuzzer's main.
$(FUZZ_OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_OUT)/bin/fuzz_conf: fuzz/fuzz_conf.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -MMD -MP -MF $@.d -o $@ $< \
	  $(FUZZ_LIB_OBJ) $(PKG_LIBS) $(LDLIBS)

$(FUZZ_OUT)/bin/fuzz_%: fuzz/fuzz_%.c $(FUZZ_DECODER_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -MMD -MP -MF $@.d -o $@ $< \
	  $(FUZZ_DECODER_OBJ) $(PKG_LIBS) $(LDLIBS)

# Every target runs even when one fails (-k); each prints its own verdict.
fuzz: fuzz-build
	@$(MAKE) --no-print-directory -k -j$(FUZZ_JOBS) $(FUZZ_TARGETS:%=fuzz-run-%) || { \
	  echo "make fuzz: FAILED (see the lines above and $(FUZZ_OUT)/<target>.log)" >&2; exit 1; }; \
	echo "make fuzz: every target ran $(FUZZ_SECONDS) s clean"

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run-$*

# Seeds: the committed ones, the shared fixtures, the example configs.
fuzz-seed-%:
	@rm -rf $(FUZZ_OUT)/seed/$* && mkdir -p $(FUZZ_OUT)/seed/$* $(FUZZ_OUT)/corpus/$* $(FUZZ_OUT)/artifacts/$*
	@if [ ! -d $(FUZZ_FIXTURES) ]; then \
	  echo "fuzz-$*: $(FUZZ_FIXTURES) absent: seeding from fuzz/corpus/$* only"; \
	elif [ $* = rdb ]; then \
	  find $(FUZZ_FIXTURES) -name '*.rdb' -exec cp {} $(FUZZ_OUT)/seed/$*/ \; ; \
	elif [ $* = cmd_stream ]; then \
	  find $(FUZZ_FIXTURES) -name '*.resp' -exec cp {} $(FUZZ_OUT)/seed/$*/ \; ; \
	fi
	@if [ $* = conf ]; then cp conf/*.ini $(FUZZ_OUT)/seed/$*/; fi

# One block of output per target, printed when it ends (targets may run side by side).
fuzz-run-%: fuzz-seed-%
	@$(FUZZ_ENV) $(FUZZ_OUT)/bin/fuzz_$* $(FUZZ_RUN_FLAGS) \
	  -artifact_prefix=$(FUZZ_OUT)/artifacts/$*/ \
	  $(FUZZ_OUT)/corpus/$* fuzz/corpus/$* $(FUZZ_OUT)/seed/$* >$(FUZZ_OUT)/$*.log 2>&1; \
	rc=$$?; \
	stats=$$(grep -E '^Done [0-9]+ runs|^stat::peak_rss_mb' $(FUZZ_OUT)/$*.log | tr -s ' ' | paste -sd ' ' -); \
	if [ $$rc != 0 ]; then \
	  { echo "fuzz-$*: FAILED (exit $$rc) after $(FUZZ_SECONDS) s max; last lines of $(FUZZ_OUT)/$*.log:"; \
	    tail -n 60 $(FUZZ_OUT)/$*.log; ls $(FUZZ_OUT)/artifacts/$*/; } >&2; exit 1; \
	fi; \
	echo "fuzz-$*: clean, $$stats (log: $(FUZZ_OUT)/$*.log)"


.DEFAULT_GOAL := $(fuzz_saved_default_goal)
