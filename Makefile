# sluice - a TUN to SOCKS5/HTTP/TLS proxy tunnel.
#   make            build ./sluice
#   make deps       apt-install build and test dependencies, fetch lwIP
#   make check      unit + e2e tests (root, network namespaces)
#   make demo       a curl through the tunnel, in namespaces of its own
#   make bench      --perf and the per-packet benchmark; bench-iperf: iperf3;
#                   bench-tls: socks5+tls vs socks5 and new-flow rates;
#                   bench-udp: UDP loss-free rates and CPU per datagram;
#                   bench-dns: DNS queries/s and latency, tcp and fake-ip;
#                   bench-peers: iperf3 matrix against hev-socks5-tunnel
#   make fuzz       libFuzzer targets for the parsers and the packet path
#   make install    PREFIX=/usr/local DESTDIR=
#   make SANITIZE=address,undefined   build with sanitizers into build-asan/
#                   (build-asan/sluice; ./sluice is left alone), lwIP's pools
#                   and heap on malloc and a 0.5 s TCP_MSL so that ASan sees
#                   lwIP's memory; `make sanitize' is the same
#   make LWIP_SRC=/path/to/lwip-2.1.3 use a pristine lwIP tree from elsewhere

VERSION    := 0.1.0
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DESTDIR    ?=

CC         ?= cc
PKG_CONFIG ?= pkg-config
ifeq ($(SANITIZE),)
BUILD      ?= build
else
BUILD      ?= build-asan
endif

LWIP_VERSION := 2.1.3
LWIP_TARBALL := third_party/lwip/dl/lwip_$(LWIP_VERSION)+dfsg1.orig.tar.xz
LWIP_PATCHES := $(sort $(wildcard third_party/lwip/patches/*.patch))
LWIP_TREE    := $(BUILD)/lwip-$(LWIP_VERSION)
LWIP_STAMP   := $(LWIP_TREE)/.sluice-patched
LWIP_PORT    := third_party/lwip/port

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Werror
OPT      ?= -O2 -g
BASEFLAGS := -std=gnu11 $(OPT) -pthread -D_GNU_SOURCE
ifneq ($(SANITIZE),)
# lwIP's memp pools and heap on malloc, so that ASan sees a pcb or pbuf used
# after lwIP freed it; a short TIME_WAIT (TCP_MSL) so that lwIP frees such
# pcbs while a test still runs; lwIP assertions abort
BASEFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
             -DMEMP_MEM_MALLOC=1 -DMEM_LIBC_MALLOC=1 -DTCP_MSL=500 \
             -DSLUICE_LWIP_ASSERT_ABORT=1
LDFLAGS   += -fsanitize=$(SANITIZE)
SLUICE_BIN := $(BUILD)/sluice
ifneq ($(findstring undefined,$(SANITIZE)),)
# lwIP computes &NULL->member in its ip_2_ip6()-style macros and tests the
# result afterwards (as in fuzz.mk): not UBSan's business in lwIP's code
LWIP_SANFLAGS := -fno-sanitize=null
endif
else
SLUICE_BIN := sluice
endif
SANITIZE_FLAGS ?= address,undefined
SANITIZE_BUILD ?= build-asan

PKGS      := libevent libevent_pthreads inih libmnl libcap
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
LIBS      := $(PKG_LIBS) -lmbedtls -lmbedx509 -lmbedcrypto -lpthread

LWIP_INC  := -I$(LWIP_PORT) -I$(LWIP_TREE)/src/include
CFLAGS_OURS  := $(BASEFLAGS) $(WARN) $(LWIP_INC) -Isrc $(PKG_CFLAGS) \
                -DSLUICE_VERSION='"$(VERSION)"' $(CFLAGS)
CFLAGS_LWIP  := $(BASEFLAGS) $(LWIP_SANFLAGS) -w $(LWIP_INC) $(CFLAGS)

LWIP_FILES := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c \
              core/memp.c core/netif.c core/pbuf.c core/raw.c core/stats.c \
              core/sys.c core/tcp.c core/tcp_in.c core/tcp_out.c \
              core/timeouts.c core/udp.c \
              core/ipv4/icmp.c core/ipv4/ip4.c core/ipv4/ip4_addr.c \
              core/ipv4/ip4_frag.c \
              core/ipv6/icmp6.c core/ipv6/inet6.c core/ipv6/ip6.c \
              core/ipv6/ip6_addr.c core/ipv6/ip6_frag.c core/ipv6/nd6.c \
              core/ipv6/mld6.c
LWIP_OBJS  := $(patsubst %.c,$(BUILD)/lwip/%.o,$(LWIP_FILES))
LWIP_LIB   := $(BUILD)/liblwip.a

SRCS       := $(sort $(wildcard src/*.c))
OBJS       := $(patsubst src/%.c,$(BUILD)/src/%.o,$(SRCS))
CORE_OBJS  := $(filter-out $(BUILD)/src/main.o,$(OBJS))
CORE_LIB   := $(BUILD)/libsluice.a

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.PHONY: all sanitize deps lwip check check-unit check-e2e demo bench bench-iperf bench-tls bench-udp bench-dns bench-peers deb check-pkg \
        install uninstall clean distclean unit

all: $(SLUICE_BIN)

# the sanitizer build: $(SANITIZE_BUILD)/sluice, for tests/check.sh
sanitize:
	$(Q)$(MAKE) --no-print-directory SANITIZE=$(SANITIZE_FLAGS) \
	    BUILD=$(SANITIZE_BUILD) $(SANITIZE_BUILD)/sluice

# ---- lwIP: pristine Debian source + our patches, never committed ----------
ifeq ($(LWIP_SRC),)
$(LWIP_TARBALL):
	third_party/lwip/fetch.sh
$(LWIP_STAMP): $(LWIP_TARBALL) $(LWIP_PATCHES)
	@echo "  LWIP    $(LWIP_TREE)"
	$(Q)rm -rf $(LWIP_TREE) && mkdir -p $(BUILD)
	$(Q)tar -C $(BUILD) -xf $(LWIP_TARBALL)
	$(Q)for p in $(LWIP_PATCHES); do patch -s -d $(LWIP_TREE) -p1 <$$p || exit 1; done
	$(Q)touch $@
else
$(LWIP_STAMP): $(LWIP_PATCHES)
	@echo "  LWIP    $(LWIP_TREE) (from $(LWIP_SRC))"
	$(Q)rm -rf $(LWIP_TREE) && mkdir -p $(LWIP_TREE)
	$(Q)cp -R $(LWIP_SRC)/src $(LWIP_TREE)/
	$(Q)for p in $(LWIP_PATCHES); do patch -s -d $(LWIP_TREE) -p1 <$$p || exit 1; done
	$(Q)touch $@
endif
lwip: $(LWIP_STAMP)

# the unpacked sources are not intermediates: keep them
.PRECIOUS: $(LWIP_TREE)/src/%.c
$(LWIP_TREE)/src/%.c: $(LWIP_STAMP) ;

$(BUILD)/lwip/%.o: $(LWIP_TREE)/src/%.c $(LWIP_STAMP) $(wildcard $(LWIP_PORT)/*.h $(LWIP_PORT)/arch/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      lwip/$*.c"
	$(Q)$(CC) $(CFLAGS_LWIP) -c $< -o $@

$(LWIP_LIB): $(LWIP_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# ---- our code -------------------------------------------------------------
$(BUILD)/src/%.o: src/%.c $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_OURS) -MMD -MP -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SLUICE_BIN): $(BUILD)/src/main.o $(CORE_LIB) $(LWIP_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(BASEFLAGS) $(LDFLAGS) -o $@ $(BUILD)/src/main.o \
	    -Wl,--start-group $(CORE_LIB) $(LWIP_LIB) -Wl,--end-group $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_LIB) $(LWIP_LIB)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_OURS) -Itests/unit -MMD -MP $(LDFLAGS) -o $@ $< -Wl,--start-group $(CORE_LIB) $(LWIP_LIB) -Wl,--end-group $(LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(CORE_LIB) $(LWIP_LIB)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_OURS) -MMD -MP $(LDFLAGS) -o $@ $< -Wl,--start-group $(CORE_LIB) $(LWIP_LIB) -Wl,--end-group $(LIBS) -ldl

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d) $(BENCH_BINS:=.d)

# libFuzzer targets (clang): make fuzz [FUZZ_SECONDS=600]
-include fuzz.mk

# ---- set-up, tests, demo, benchmarks --------------------------------------
deps:
	tests/deps.sh
	$(MAKE) lwip

unit: $(UNIT_BINS)

check-unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

check-e2e: sluice
	@tests/e2e/run.sh

ifneq ($(SANITIZE),)
# a sanitized build never writes ./sluice
sluice: $(SLUICE_BIN)
endif

check: sluice $(UNIT_BINS) sanitize
	@tests/check.sh $(UNIT_BINS)

demo: sluice
	@tests/demo.sh

bench: sluice $(BENCH_BINS)
	@tests/bench/run.sh $(filter-out %/udpblast,$(BENCH_BINS))

bench-iperf: sluice
	@tests/bench/iperf.sh

bench-tls: sluice
	@tests/bench/tls.sh

bench-udp: sluice $(BENCH_BINS)
	@tests/bench/udp.sh

bench-dns: sluice
	@tests/bench/dns.sh

bench-peers: sluice
	@tests/bench/peers.sh

install: sluice
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	        $(DESTDIR)$(SYSCONFDIR)/sluice $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 755 sluice $(DESTDIR)$(SBINDIR)/sluice
	install -m 644 man/sluice.8 $(DESTDIR)$(MANDIR)/man8/sluice.8
	install -m 644 man/sluice.conf.5 $(DESTDIR)$(MANDIR)/man5/sluice.conf.5
	@mkdir -p $(BUILD)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	        packaging/sluice.service.in >$(BUILD)/sluice.service
	install -m 644 $(BUILD)/sluice.service $(DESTDIR)$(UNITDIR)/sluice.service
	install -m 644 packaging/sluice.sysusers $(DESTDIR)$(SYSUSERSDIR)/sluice.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.conf ] || \
	        install -m 640 conf/sluice.conf $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && \
	    command -v systemd-sysusers >/dev/null; then \
		echo "systemd-sysusers $(SYSUSERSDIR)/sluice.conf"; \
		systemd-sysusers $(SYSUSERSDIR)/sluice.conf && \
		chgrp sluice $(SYSCONFDIR)/sluice/sluice.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/sluice $(DESTDIR)$(MANDIR)/man8/sluice.8 \
	      $(DESTDIR)$(MANDIR)/man5/sluice.conf.5 \
	      $(DESTDIR)$(UNITDIR)/sluice.service $(DESTDIR)$(SYSUSERSDIR)/sluice.conf

# Debian package (debhelper, packaging/debian/), built without the network
# from a copy of the sources and lwIP's tarball in $(BUILD)/deb/
deb: $(LWIP_TARBALL)
	packaging/mkdeb.sh $(BUILD)/deb

# the package built, linted, installed and purged (root)
check-pkg:
	@tests/pkg.sh

clean:
	rm -rf $(BUILD)/src $(BUILD)/tests $(BUILD)/bench $(BUILD)/lwip $(BUILD)/*.a $(SLUICE_BIN)

distclean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) sluice third_party/lwip/dl
