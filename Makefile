# plexnet: `sudo make topology` brings figure4 up, `sudo make test` runs every test.

# sudo resets PATH: find the cargo of root or of the user who ran sudo.
SUDO_HOME := $(if $(SUDO_USER),$(shell getent passwd $(SUDO_USER) | cut -d: -f6))
CARGO := $(or $(shell command -v cargo 2>/dev/null),$(wildcard $(HOME)/.cargo/bin/cargo),$(wildcard $(SUDO_HOME)/.cargo/bin/cargo))
ifneq ($(and $(SUDO_HOME),$(findstring $(SUDO_HOME),$(CARGO))),)
  export CARGO_HOME := $(SUDO_HOME)/.cargo
  export RUSTUP_HOME := $(SUDO_HOME)/.rustup
endif
PLEXNET := target/release/plexnet
TOPOLOGY ?= topologies/figure4.toml

.PHONY: topology up down build test doctor deps bench bench-ipsec bench-lab bench-floor bench-sysplex bench-ike bench-flood fmt lint check-cargo fuzz fuzz-seed fuzz-check soak

topology: check-cargo
	@scripts/deps.sh --check-only >/dev/null 2>&1 || scripts/deps.sh
	$(CARGO) build --release
	@# The walk-through's `sudo plexnet ...`: sudo's PATH has /usr/local/bin.
	@ln -sfn $(abspath $(PLEXNET)) /usr/local/bin/plexnet 2>/dev/null \
	  && echo "plexnet: /usr/local/bin/plexnet -> $(abspath $(PLEXNET))" \
	  || echo "plexnet: could not link /usr/local/bin/plexnet; run $(PLEXNET) instead" >&2
	$(PLEXNET) doctor $(TOPOLOGY)
	$(PLEXNET) up $(TOPOLOGY)

up: topology

down: check-cargo
	@[ -x $(PLEXNET) ] || $(CARGO) build --release
	$(PLEXNET) down --all

build: check-cargo
	$(CARGO) build --release

# The namespace tests need strongSwan, tshark, ...: install what is missing
# first (as `make topology` does), so a fresh machine passes as this one.
test: check-cargo
	@scripts/deps.sh --check-only >/dev/null 2>&1 || scripts/deps.sh
	$(CARGO) test --workspace

# plexnet doctor for every topology under topologies/ (CI runs it): exits
# non-zero, naming the package, plugin or kernel feature, when one is missing.
doctor: check-cargo
	$(CARGO) build --bin plexnet
	@for t in topologies/*.toml; do target/debug/plexnet doctor $$t || exit 1; done

deps:
	scripts/deps.sh

bench: bench-ipsec bench-lab bench-sysplex bench-ike bench-flood

bench-ipsec: check-cargo
	$(CARGO) bench --bench ipsec

bench-lab: check-cargo
	$(CARGO) build --release
	scripts/bench-lab.sh $(PLEXNET)

# IKE SA + child SA setups per second at the routing stack (x25519, ecp256,
# modp2048) -> target/bench/ike.json; iperf3 strongSwan client1 -> DVA1 next
# to strongSwan<->strongSwan -> target/bench/iperf.json. Needs root.
bench-ike: check-cargo
	$(CARGO) bench --bench ike_lab

# CPU per MB of a relay that only forwards (MVS1's I/O; bare UDP sockets;
# the XCF send alone) next to the CPU to decrypt a MB -> target/bench/floor.json: what the
# routing-stack CPU ratio of bench-sysplex can reach on this machine.
bench-floor: check-cargo
	$(CARGO) bench --bench forward_floor

# The DCT's cost per SYN for 1 Ki..1 Mi entries (target/bench/dct.json),
# then figure4 under a spoofed SYN flood (to a filtered and to a clear
# port) and forged ESP from a namespace attached to net, with curl loops
# from both clients: 0 failed curls, MVS1's RSS under its bound, no replay
# window moved -> target/bench/flood.json. Needs root.
bench-flood: check-cargo
	$(CARGO) bench --bench dct
	$(CARGO) bench --bench flood

bench-sysplex: check-cargo bench-floor
	$(CARGO) build --release
	scripts/bench-sysplex.sh $(PLEXNET)

# The fuzz targets of fuzz/ (cargo-fuzz, installed when missing; built on
# the stable toolchain with RUSTC_BOOTSTRAP=1), FUZZ_SECONDS each (default
# 60), on the corpora in fuzz/corpus/, minimized after the run ->
# target/bench/fuzz.json. Not part of `make test`.
fuzz: check-cargo
	scripts/fuzz.sh

# Writes the corpora's seeds (fuzz/examples/seed.rs: real XCF and CF frames,
# a real IKE exchange, a connection through the SA) into fuzz/corpus/.
fuzz-seed: check-cargo
	$(CARGO) run --manifest-path fuzz/Cargo.toml --example seed -- fuzz/corpus

# CI: the fuzz targets and the seeder still compile (stable, no fuzzing).
fuzz-check: check-cargo
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins --examples

# figure4 under iperf3 from strongSwan and the plexnet client for
# SOAK_SECONDS (default 600) with rekeys every ~30 s, a takeover and a
# giveback -> target/bench/soak.json (scripts/soak.sh). Needs root; not part
# of `make test`.
soak: check-cargo
	$(CARGO) build --release --bin plexnet
	scripts/soak.sh $(PLEXNET)

fmt: check-cargo
	$(CARGO) fmt --all

lint: check-cargo
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-cargo:
	@[ -n "$(CARGO)" ] || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
