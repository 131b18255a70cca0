# s2s-proxy: build, test, demo.  `make test` on a fresh Debian 12 machine installs what is
# missing (make deps), builds everything under build/ and runs every suite.

BUILD    ?= build
CXX      ?= g++
FUZZ_CXX ?= clang++

STD      := -std=c++17
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT      ?= -O2
DEBUG    ?= -g
SAN      ?=
FINAL_CXXFLAGS  = $(STD) $(WARN) $(OPT) $(DEBUG) $(SAN) -I. -MMD -MP $(CXXFLAGS)
FINAL_LDFLAGS   = $(SAN) $(LDFLAGS)
LIBS     := -luv -lmbedtls -lmbedx509 -lmbedcrypto -ludns -lexpat -lhttp_parser -lidn2

# Debian packages the build and the tests need (make deps installs only the missing ones).
# The tests' real peers: Prosody (with lua-unbound for its resolver), ejabberd, dnsmasq, slixmpp,
# HAProxy (a load balancer sending the PROXY protocol), nsd, unbound and ldnsutils (DNSSEC for
# the DANE test: a zone signed at test time behind a validating resolver). make deb needs dpkg-dev
# (dpkg-shlibdeps); its tests need systemd (systemd-analyze, systemd-sysusers) and strace (the
# unit's system call filter).
DEB_PACKAGES := g++ make clang libclang-rt-14-dev libuv1-dev libmbedtls-dev libudns-dev \
                libexpat1-dev libcpptoml-dev doctest-dev libhttp-parser-dev libidn2-dev openssl python3 \
                prosody lua-unbound ejabberd dnsmasq-base python3-slixmpp python3-yaml \
                haproxy prometheus jabberd2 dpkg-dev systemd strace nsd unbound ldnsutils

# Sources live one folder per layer (common/<layer>/, proxy/<layer>/; tests/cli/test_layers.py
# names the layers and checks that every include points down); the unit tests mirror them.
COMMON_SRC := $(wildcard common/*/*.cpp)
PROXY_SRC  := $(filter-out proxy/app/main.cpp,$(wildcard proxy/*/*.cpp))
UNIT_SRC   := $(wildcard tests/unit/*.cpp tests/unit/*/*.cpp tests/unit/*/*/*.cpp)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.cpp)

COMMON_OBJ := $(COMMON_SRC:%.cpp=$(BUILD)/obj/%.o)
PROXY_OBJ  := $(PROXY_SRC:%.cpp=$(BUILD)/obj/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.cpp=$(BUILD)/obj/%.o)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.cpp=$(BUILD)/fuzz/%)

PROXY_BIN  := $(BUILD)/s2s-proxy
UNIT_BIN   := $(BUILD)/unit-tests

NPROC := $(shell nproc 2>/dev/null || echo 2)

ifneq ($(V),1)
Q := @
endif

.PHONY: all deps test unit demo asan fuzz clean

all: $(PROXY_BIN) $(UNIT_BIN)

# Installs only what is missing. A temporary policy-rc.d keeps the freshly installed Prosody,
# ejabberd and HAProxy services from starting (the tests run their own instances on loopback).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && \
	    $$SUDO chmod +x /usr/sbin/policy-rc.d && guard=1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  rc=$$?; [ -z "$$guard" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	else echo "deps: all installed"; fi

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  CXX   $<"
	$(Q)$(CXX) $(FINAL_CXXFLAGS) -c $< -o $@

$(PROXY_BIN): $(BUILD)/obj/proxy/app/main.o $(PROXY_OBJ) $(COMMON_OBJ)
	@echo "  LINK  $@"
	$(Q)$(CXX) $(FINAL_LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT_BIN): $(UNIT_OBJ) $(PROXY_OBJ) $(COMMON_OBJ)
	@echo "  LINK  $@"
	$(Q)$(CXX) $(FINAL_LDFLAGS) -o $@ $^ $(LIBS)

# Fuzz targets: clang's libFuzzer with ASan and UBSan. The common sources are compiled once for
# all targets (fuzzer-no-link), then each target links its entry point against them.
FUZZ_FLAGS := $(STD) -g -O1 -I. -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ   := $(COMMON_SRC:%.cpp=$(BUILD)/fuzzobj/%.o)
.SECONDARY: $(FUZZ_OBJ)
$(BUILD)/fuzzobj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  FCXX  $<"
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.cpp $(FUZZ_OBJ) $(wildcard proxy/resolve/dns_responder_wire.*)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LIBS)

# Targets that drive the proxy's own parts (streams, resolver, admin endpoint) link the proxy's
# sources as well, compiled the same way; the others need common/ only.
FUZZ_PROXY_TARGETS := fuzz_s2s_in fuzz_s2s_out fuzz_dns_answers fuzz_admin
FUZZ_PROXY_BIN := $(FUZZ_PROXY_TARGETS:%=$(BUILD)/fuzz/%)
FUZZ_PROXY_OBJ := $(PROXY_SRC:%.cpp=$(BUILD)/fuzzobj/%.o)
.SECONDARY: $(FUZZ_PROXY_OBJ)
$(FUZZ_PROXY_BIN): $(BUILD)/fuzz/%: tests/fuzz/%.cpp $(FUZZ_OBJ) $(FUZZ_PROXY_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_PROXY_OBJ) $(FUZZ_OBJ) $(LIBS)

fuzz: $(FUZZ_BIN)

# make fuzz-long [FUZZ_SECONDS=600] (not part of make test): each target runs FUZZ_SECONDS from
# its corpus under tests/fuzz/corpus/<name>/, then the corpus is replaced by a minimised merge of
# itself and what the run found (libFuzzer -merge=1 into a fresh directory). Crashes are left in
# $(BUILD)/fuzz-long/ and fail the run.
FUZZ_SECONDS ?= 600
.PHONY: fuzz-long
fuzz-long: fuzz
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz-long.sh

unit: $(UNIT_BIN)
	$(UNIT_BIN)

# The sanitizer build's flags (make asan, and the second half of make test): AddressSanitizer with
# LeakSanitizer, and UBSan with every finding fatal. Debug information is line tables only (-g1):
# enough for file:line in every report's stack, and about a third less compile time than -g.
ASAN_SAN   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_BUILD  = $(MAKE) --no-print-directory -j$(NPROC) BUILD=$(BUILD)/asan OPT=-O1 DEBUG=-g1 SAN="$(ASAN_SAN)"

# The unit and command-line suites against the sanitizer build in build/asan (SAN_BUILD), where a
# sanitizer report counts as a failure; every other suite against build/, the fuzz targets 10 s
# each. One total line.
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all fuzz
	@$(ASAN_BUILD) all
	@BUILD=$(BUILD) SAN_BUILD=$(BUILD)/asan FUZZ_SECONDS=10 tests/run-all.sh

# Sanitizer build: everything under build/asan, then every suite but the fuzz targets (which
# have sanitizers of their own) against it. SAN, OPT and DEBUG reach the benchmark tools' build through
# the environment; run-all.sh collects every sanitizer report and counts each as a failure.
asan: deps
	@$(ASAN_BUILD) all
	@BUILD=$(BUILD)/asan OPT=-O1 DEBUG=-g1 SAN="$(ASAN_SAN)" SKIP_FUZZ=1 tests/run-all.sh

demo: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@BUILD=$(BUILD) tests/demo.sh

clean:
	rm -rf $(BUILD)

# make install [DESTDIR=/staging] [PREFIX=/usr/local]: the binary, the example configs, the Prosody
# plugin and a man-style README under $(DESTDIR)$(PREFIX), the systemd unit in SYSTEMD_UNITDIR
# (PREFIX/lib/systemd/system; /lib/systemd/system for PREFIX=/usr, as Debian 12 has it) with its
# paths under /usr/local moved to PREFIX, and the sysusers.d file that makes its user in
# PREFIX/lib/sysusers.d; builds the binary first if needed and gives the same tree when run
# again. docker/Dockerfile installs this way into its runtime image.
PREFIX  ?= /usr/local
DESTDIR ?=
ifeq ($(PREFIX),/usr)
SYSTEMD_UNITDIR ?= /lib/systemd/system
else
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
endif
.PHONY: install
install: $(PROXY_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/s2s-proxy/examples \
	  $(DESTDIR)$(PREFIX)/share/s2s-proxy/prosody $(DESTDIR)$(PREFIX)/share/s2s-proxy/ejabberd \
	  $(DESTDIR)$(PREFIX)/share/doc/s2s-proxy $(DESTDIR)$(SYSTEMD_UNITDIR) $(DESTDIR)$(PREFIX)/lib/sysusers.d
	install -m 0755 $(PROXY_BIN) $(DESTDIR)$(PREFIX)/bin/s2s-proxy
	sed 's|/usr/local/|$(PREFIX)/|g' config-examples/systemd/s2s-proxy.service > $(BUILD)/s2s-proxy.service
	install -m 0644 $(BUILD)/s2s-proxy.service $(DESTDIR)$(SYSTEMD_UNITDIR)/s2s-proxy.service
	install -m 0644 config-examples/systemd/s2s-proxy.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/s2s-proxy.conf
	install -m 0644 config-examples/*.toml $(DESTDIR)$(PREFIX)/share/s2s-proxy/examples/
	install -m 0644 config-examples/prosody/mod_s2s_proxy.lua config-examples/prosody/s2s-proxy.cfg.lua \
	  config-examples/prosody/README.md $(DESTDIR)$(PREFIX)/share/s2s-proxy/prosody/
	install -m 0644 config-examples/ejabberd/ejabberd.yml config-examples/ejabberd/ejabberd-component.yml \
	  config-examples/ejabberd/inetrc \
	  config-examples/ejabberd/README.md $(DESTDIR)$(PREFIX)/share/s2s-proxy/ejabberd/
	install -m 0644 docker/s2s-proxy.8.md $(DESTDIR)$(PREFIX)/share/doc/s2s-proxy/README.md

# make deb: build/s2s-proxy_<version>_<arch>.deb, made with dpkg-shlibdeps and dpkg-deb from a
# staged make install with PREFIX=/usr (config-examples/systemd/debian/build-deb.sh says what
# else goes in). DEB_MAINTAINER sets its Maintainer field.
.PHONY: deb
deb: $(PROXY_BIN)
	@BUILD=$(BUILD) config-examples/systemd/debian/build-deb.sh

# make bench (not part of make test): tests/bench/bench.mk
-include tests/bench/bench.mk

-include $(shell find $(BUILD)/obj $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)
