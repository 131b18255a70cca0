# make bench: throughput, latency, memory per link and handshakes of s2s-proxy against the
# hardware limit and Prosody, on loopback, in one run (tests/bench/README.md). Not part of
# `make test`; `make bench-smoke` is the short check of the tools that is.
#
# Included by the top-level Makefile: its variables (BUILD, FINAL_CXXFLAGS, LIBS, COMMON_OBJ,
# PROXY_BIN...) and its $(BUILD)/obj/%.o rule apply.

BENCH_SRC := $(wildcard tests/bench/*.cpp)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/obj/%.o)
BENCH_BIN := $(BUILD)/s2s-bench
# Where results.json, the table and the plot go.
BENCH_OUT ?= $(BUILD)/bench
# Extra arguments for tests/bench/run.py (e.g. --skip-prosody, --only=limit,throughput).
BENCH_ARGS ?=
# make soak: minutes, where the CSV and the plot go, extra arguments for tests/bench/soak.py.
SOAK_MINUTES ?= 30
SOAK_OUT ?= $(BUILD)/soak
SOAK_ARGS ?=

# Packages gnuplot may come from; gnuplot-nox (no X) is installed when none is.
BENCH_GNUPLOT_PACKAGES := gnuplot-nox gnuplot-qt gnuplot-x11

.PHONY: bench bench-smoke bench-deps bench-tools soak

$(BENCH_BIN): $(BENCH_OBJ) $(COMMON_OBJ)
	@echo "  LINK  $@"
	$(Q)$(CXX) $(FINAL_LDFLAGS) -o $@ $^ $(LIBS) -lpthread

bench-tools: $(PROXY_BIN) $(BENCH_BIN)

# Installs gnuplot-nox only when no gnuplot package is installed (same way as `make deps`).
bench-deps:
	@if dpkg-query -W -f='$${Status}\n' $(BENCH_GNUPLOT_PACKAGES) 2>/dev/null | grep -q '^install ok installed'; then \
	  echo "bench-deps: gnuplot installed"; \
	else \
	  echo "bench-deps: installing gnuplot-nox"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox; \
	fi

bench: deps bench-deps
	@$(MAKE) --no-print-directory -j$(NPROC) bench-tools
	@/usr/bin/python3 tests/bench/run.py --build $(BUILD) --out $(BENCH_OUT) $(BENCH_ARGS)

# A few seconds: every tool runs with small N and the results have every key.
bench-smoke:
	@$(MAKE) --no-print-directory -j$(NPROC) bench-tools
	@BUILD=$(BUILD) tests/bench/smoke.sh

# Waves of links and a slowloris population for SOAK_MINUTES; passes when s2s-proxy returns to its
# footprint after every wave and loses nothing (tests/bench/README.md, "Soak"). Not in `make test`.
soak: deps bench-deps
	@$(MAKE) --no-print-directory -j$(NPROC) bench-tools
	@/usr/bin/python3 tests/bench/soak.py --build $(BUILD) --out $(SOAK_OUT) --minutes $(SOAK_MINUTES) $(SOAK_ARGS)
