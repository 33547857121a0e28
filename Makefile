# fourc build. Everything comes from the system through pkg-config; nothing is
# vendored. `make` builds build/fourcd and build/fourc; `make check` is the
# whole test suite (it installs what the tests need first); `make run` starts
# the embedded server with the development configuration.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
PKGS    := libuv openssl libsodium sqlite3 inih libsignal-protocol-c
WERROR  ?= $(if $(CI),-Werror,)

CFLAGS_BASE := -std=gnu11 -g -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-unused-parameter $(WERROR) \
	-Isrc $(shell pkg-config --cflags $(PKGS)) -MMD -MP -pthread
ifeq ($(SAN),1)
CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
else
CFLAGS_OPT := -O2
LDFLAGS_SAN :=
endif
CFLAGS  := $(CFLAGS_BASE) $(CFLAGS_OPT) $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lm -pthread $(LDFLAGS_SAN)

LIB_SRCS  := $(filter-out src/cmd/%,$(shell find src -name '*.c' | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(filter-out fuzz/replay_main.c,$(wildcard fuzz/*.c))
FUZZ_REPLAY := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%-replay,$(FUZZ_SRCS))

.PHONY: all deps test-deps run check unit fuzz-replay fuzz asan integration bench clean format-check lint

all: $(BUILD)/fourcd $(BUILD)/fourc

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libfourc.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fourcd: $(BUILD)/obj/src/cmd/fourcd.o $(BUILD)/libfourc.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fourc: $(BUILD)/obj/src/cmd/fourc.o $(BUILD)/libfourc.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: one binary per tests/unit/<dir>/test_<name>.c, linked with cmocka.
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libfourc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libfourc.a $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
		echo "== $$t"; (cd tests/unit && ../../$$t) || fail=1; \
	done; exit $$fail

# Fuzz targets build twice: a replay driver (plain main over the corpus, any
# compiler) that `make check` runs, and a libFuzzer binary (clang) for fuzzing.
$(BUILD)/fuzz/%-replay: fuzz/%.c fuzz/replay_main.c $(BUILD)/libfourc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< fuzz/replay_main.c $(BUILD)/libfourc.a $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY)
	@fail=0; for f in $(FUZZ_REPLAY); do \
		n=$$(basename $$f -replay); \
		$$f fuzz/corpus/$$n || fail=1; \
	done; exit $$fail

fuzz:
	$(MAKE) -f fuzz/fuzz.mk

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

deps:
	bash scripts/install-deps.sh

test-deps:
	bash scripts/install-deps.sh --test

run: deps
	$(MAKE) all
	$(BUILD)/fourcd serve --config deploy/dev.ini

integration: all
	python3 -m pytest -q tests/integration

check:
	bash scripts/check.sh

bench: all
	bash bench/run.sh

lint:
	bash scripts/lint.sh

clean:
	rm -rf build build-asan

# Header dependencies of every object and test binary (written by -MMD).
-include $(shell find $(BUILD) -name "*.d" 2>/dev/null)
