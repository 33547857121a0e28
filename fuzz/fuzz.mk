# libFuzzer builds of the fuzz targets (`make fuzz` runs this file).
#
#   make -f fuzz/fuzz.mk                  build build/fuzz/<target> for every fuzz/<target>.c
#   make -f fuzz/fuzz.mk run              fuzz each target for FUZZ_SECONDS (default 60)
#   make -f fuzz/fuzz.mk run-ws_frame     fuzz one target
#
# The codec modules a target may reach (core, net/ws, net/http, proto) are
# compiled here with the fuzzer's instrumentation into their own archive,
# not taken from build/libfourc.a; linking through an archive pulls in only
# the objects a target uses, so modules with other dependencies (config and
# its ini parser, say) stay out. Fuzzing writes new inputs to
# build/fuzz/corpus/<target>/ and crashes to build/fuzz/artifacts/; the
# committed seeds in fuzz/corpus/<target>/ are only read. Copy a small,
# interesting new input into fuzz/corpus/<target>/ by hand, so that
# `make fuzz-replay` keeps checking it.

BUILD        ?= build
FUZZ_SECONDS ?= 60
# Above HTTP_MAX_HEAD, so inputs can cross the head cap.
FUZZ_MAX_LEN ?= 12288
FUZZ_CC      ?= clang
FUZZ_PKGS    := openssl libsodium
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Isrc $(shell pkg-config --cflags $(FUZZ_PKGS)) \
	-MMD -MP
FUZZ_LDLIBS  := $(shell pkg-config --libs $(FUZZ_PKGS)) -lm -pthread

FUZZ_LIB_SRCS := $(sort $(wildcard src/core/*.c) src/net/ws.c src/net/http.c $(wildcard src/proto/*.c))
FUZZ_TARGETS  := $(patsubst fuzz/%.c,%,$(filter-out fuzz/replay_main.c,$(wildcard fuzz/*.c)))
FUZZ_BINS     := $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
FUZZ_OBJS     := $(FUZZ_LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_LIB      := $(BUILD)/fuzz/libfourc-fuzz.a

.PHONY: all run $(addprefix run-,$(FUZZ_TARGETS))

all: $(FUZZ_BINS)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB) $(FUZZ_LDLIBS)

run: $(addprefix run-,$(FUZZ_TARGETS))

$(addprefix run-,$(FUZZ_TARGETS)): run-%: $(BUILD)/fuzz/%
	@mkdir -p $(BUILD)/fuzz/corpus/$* $(BUILD)/fuzz/artifacts
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/artifacts/$*- \
		$(BUILD)/fuzz/corpus/$* fuzz/corpus/$*

-include $(FUZZ_OBJS:.o=.d) $(FUZZ_BINS:=.d)
