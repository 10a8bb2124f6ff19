# One entry point for people and CI (STYLE 19). `make run` shows the product; `make test` is
# what CI runs (through .ci/run).
SHELL := /bin/bash
CARGO ?= cargo
SHARED ?= $(abspath ../shared)
DEMO_DIR := target/demo
FUZZ_SECONDS ?= 20
BENCH_LOOPS ?= 48
export SVM_SHARED := $(SHARED)

.PHONY: all build release run test conformance fmt-check clippy unit test-dpdk fuzz-build fuzz-smoke bench bench-criterion bench-replay bench-dpdk clean

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p svm -p testgen

## run: generate the demo capture and replay it through the inline engine with the default policy
## and the demo's rules (deploy/demo.rules).
run: release
	@mkdir -p $(DEMO_DIR)
	target/release/svm-testgen demo $(DEMO_DIR)/demo.pcap
	target/release/svm replay $(DEMO_DIR)/demo.pcap --inline --rules deploy/demo.rules \
	    --write-forwarded $(DEMO_DIR)/forwarded.pcap --write-injected $(DEMO_DIR)/injected.pcap
	@echo
	@echo "EVE JSON of the same run: target/release/svm replay $(DEMO_DIR)/demo.pcap --inline --rules deploy/demo.rules --eve -"
	@echo "Forwarded and injected frames: $(DEMO_DIR)/forwarded.pcap, $(DEMO_DIR)/injected.pcap"

## test: formatting, lints, every test, and a short fuzz run of every target.
test: fmt-check clippy unit test-dpdk fuzz-smoke

## conformance: every Suricata conformance case (../shared/conformance) through the real svm
## binary; one line per failing case, then `N passed, M failed` (docs/conformance.md).
conformance:
	$(CARGO) build -p svm -p svm-e2e --bins
	target/debug/conformance $(SHARED)/conformance/suricata-verify

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

## test-dpdk: the DPDK backend (feature dpdk; needs libdpdk-dev, clang, pkg-config): lints, then
## its tests over net_pcap vdevs (no hugepages, no NIC; each EAL in its own process), then the
## daemon's config tests and the live namespace cases with `svm run` on DPDK (root; they skip
## with a message otherwise). The svm binary is built with the feature first.
test-dpdk:
	$(CARGO) clippy -p dataplane -p dpdk-sys --all-targets --features dataplane/dpdk -- -D warnings
	$(CARGO) clippy -p svm -p svm-e2e --all-targets --features svm/dpdk,svm-e2e/dpdk -- -D warnings
	$(CARGO) test -p dataplane --features dpdk
	$(CARGO) build -p svm --bins --features dpdk
	$(CARGO) test -p svm --features dpdk --lib daemon::
	$(CARGO) test -p svm-e2e --features dpdk --test live_dpdk
	$(CARGO) test -p svm-e2e --features dpdk --test live_control dpdk_

# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain build them.
# The build's output also goes to fuzz/target/build.log. A failing link of a large target buries
# its cause (out of disk, killed for memory) far above the last line, so on failure the lines that
# name one are printed again at the end, each cut to 300 characters; make fails with cargo's status.
fuzz-build:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	@mkdir -p fuzz/target
	@cd fuzz && set -o pipefail && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build --sanitizer none 2>&1 | tee target/build.log || { \
	  rc=$$?; \
	  echo "== fuzz-build failed (exit $$rc); the lines of fuzz/target/build.log that say why:"; \
	  grep -E 'error|ld:|collect2|No space|Killed|signal' target/build.log | cut -c1-300 | tail -n 40; \
	  exit $$rc; }

fuzz-smoke: fuzz-build
	@set -e; cd fuzz; for t in $$(RUSTC_BOOTSTRAP=1 $(CARGO) fuzz list); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p corpus/$$t; \
	  seeds=""; [ -d seeds/$$t ] && seeds=seeds/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$t corpus/$$t $$seeds -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 12; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

## agreement: svm's ET Open alerts against Suricata 8.0.6's on every shared capture: matched,
## missed and extra per capture (docs/conformance.md, "Agreement with Suricata").
.PHONY: agreement
agreement: release
	scripts/agreement.sh $(SHARED)

## bench: criterion benches and the replay throughput harness (figures go to docs/benchmarks.md by hand).
bench: bench-criterion bench-replay

bench-criterion:
	$(CARGO) bench -p dataplane

bench-replay: release
	scripts/bench-replay.sh $(SHARED)/bench/pcaps/ndpi-tests-merged.pcap $(BENCH_LOOPS)

## bench-dpdk: our DPDK inline forwarding vs dpdk-testpmd over net_null (needs dpdk-dev for testpmd).
bench-dpdk:
	scripts/bench-dpdk.sh

## bench-isolation-live: API answer to the VM's last forwarded frame, live in namespaces (root).
.PHONY: bench-isolation-live
bench-isolation-live:
	scripts/bench-isolation-live.sh

clean:
	$(CARGO) clean

## image: the SVM appliance (docs/deployment.md): target/image/svm.qcow2 and svm.ova from Debian 12
## packages (mmdebstrap), with the svm release binary built with DPDK, booting a unified kernel
## image signed for Secure Boot (SVM_SB_KEY/SVM_SB_CERT, else a key generated once in
## target/image/secureboot). Root; needs mmdebstrap, squashfs-tools, cryptsetup-bin, dosfstools,
## mtools, qemu-utils, binutils, sbsigntool, systemd-boot-efi.
## image-test: boots the qcow2 under qemu (KVM when /dev/kvm is writable) with a cidata seed and a
## test management server, first under Secure Boot; needs qemu-system-x86, ovmf, xorriso, nmap,
## mtools, binutils, python3-yaml and virt-fw-vars (pip install virt-firmware) (deploy/image/test.sh).
.PHONY: image image-test
image:
	$(CARGO) build --release -p svm --features dpdk
	deploy/image/build.sh

image-test:
	deploy/image/test.sh

# The image's boot test takes 5-10 minutes on machines without usable KVM (docs/benchmarks.md),
# beyond CI's budget: `make test IMAGE_TEST=1` adds the build and the boot test.
ifeq ($(IMAGE_TEST),1)
test: image image-test
endif

.PHONY: deb deb-test

## deb: the Debian package (cargo-deb; metadata in svm/Cargo.toml): the release binary, the
## systemd unit and sysusers file, /etc/svm/svm.yaml, logrotate, man pages and completions
## (generated by the binary itself: `svm dist-files`). Output: target/debian/svm_*.deb.
deb:
	@command -v cargo-deb >/dev/null || $(CARGO) install --locked cargo-deb
	$(CARGO) build --release -p svm
	target/release/svm dist-files target/release/dist
	$(CARGO) deb -p svm --no-build -o target/debian/

## deb-test: install the package into a fresh mmdebstrap minbase root (needs root and the Debian
## mirror) and run `svm --version` and `svm policy check` there. About 135 s on the CI machine
## (130 s of it the clean root), so not part of `make test`.
deb-test: deb
	scripts/deb-test.sh $$(ls -t target/debian/svm_*.deb | head -n 1)
