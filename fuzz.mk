# fuzz.mk - libFuzzer targets in tests/fuzz/, built with clang into their
# own tree so they never mix with the normal (gcc) build.  Included by the
# Makefile after its variables; reuses SRCS, LWIP_FILES, LWIP_TREE,
# LWIP_STAMP and the compiler flags from there.
#
#   make fuzz                      build, then run each target 10 min
#   make fuzz FUZZ_SECONDS=20      shorter runs (make check: 5 s)
#   make fuzz FUZZ_TARGETS="fuzz_http fuzz_url"   only some targets
#   make fuzz-build                just build $(FUZZ_BUILD)/fuzz_*
#   make fuzz-seeds                rewrite tests/fuzz/corpus/ from seeds.c
#   make fuzz-clean
#
# Known reproducers, tests/fuzz/crashes/NAME-*, are replayed before each
# target runs; one that still crashes fails the target.  A new crash is
# saved as $(FUZZ_BUILD)/crashes/NAME-crash-*; replay it with
# $(FUZZ_BUILD)/NAME FILE (FUZZ_PACKET_DEBUG=1 traces fuzz_packet's
# packets).  Logs are in $(FUZZ_BUILD)/logs/NAME.log.

FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_OPT     := -g -O1

# The normal flags with the optimisation level replaced; the sanitizer
# coverage hooks go into everything, libFuzzer's main only into the targets.
# SLUICE_LWIP_ASSERT_ABORT: a failed lwIP assertion aborts (arch/cc.h),
# where the production build logs, counts and goes on.  TCP_PCB_HASH_CHECK:
# every pcb lookup by hash (lwIP patch 0005) is checked against a scan.
FUZZ_CFLAGS_OURS = $(filter-out -O%,$(CFLAGS_OURS)) $(FUZZ_OPT) \
                   -fsanitize=fuzzer-no-link $(FUZZ_SAN) -DSLUICE_LWIP_ASSERT_ABORT
# lwIP computes &NULL->member in its ip_2_ip6()-style macros and tests the
# result for NULL afterwards (icmp6_send_response): harmless, but UBSan's
# null check stops on it.  A real NULL load or store still dies under ASan.
FUZZ_CFLAGS_LWIP = $(filter-out -O%,$(CFLAGS_LWIP)) $(FUZZ_OPT) \
                   -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fno-sanitize=null \
                   -DSLUICE_LWIP_ASSERT_ABORT -DTCP_PCB_HASH_CHECK=1
FUZZ_LDFLAGS     = -fsanitize=fuzzer $(FUZZ_SAN)

FUZZ_LWIP_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/lwip/%.o,$(LWIP_FILES))
FUZZ_LWIP_LIB  := $(FUZZ_BUILD)/liblwip.a
FUZZ_CORE_OBJS := $(patsubst src/%.c,$(FUZZ_BUILD)/src/%.o,\
                  $(filter-out src/main.c,$(SRCS)))
FUZZ_CORE_LIB  := $(FUZZ_BUILD)/libsluice.a

FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ALL     := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_ALL))

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-clean

fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(FUZZ_SECONDS) \
	    $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/lwip/%.o: $(LWIP_TREE)/src/%.c $(LWIP_STAMP) $(wildcard $(LWIP_PORT)/*.h $(LWIP_PORT)/arch/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  lwip/$*.c"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS_LWIP) -c $< -o $@

$(FUZZ_LWIP_LIB): $(FUZZ_LWIP_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BUILD)/src/%.o: src/%.c $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS_OURS) -MMD -MP -c $< -o $@

$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE_LIB) $(FUZZ_LWIP_LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS_OURS) -MMD -MP $(FUZZ_LDFLAGS) -o $@ $< \
	    -Wl,--start-group $(FUZZ_CORE_LIB) $(FUZZ_LWIP_LIB) -Wl,--end-group \
	    $(LIBS)

# The seed generator is a plain program (no sanitizers needed).
$(FUZZ_BUILD)/seeds: tests/fuzz/seeds.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(FUZZ_CC) -std=gnu11 -O1 -g $(WARN) -o $@ $<

fuzz-seeds: $(FUZZ_BUILD)/seeds
	$(FUZZ_BUILD)/seeds tests/fuzz/corpus

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(FUZZ_CORE_OBJS:.o=.d) $(FUZZ_BINS:=.d)

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
