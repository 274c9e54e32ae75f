# nodekit — build, test and run. Two commands matter:
#   sudo make run    installs what is missing, builds, and runs the sample
#   sudo make test   installs what is missing, builds, and runs every test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN      := $(CURDIR)/bin
OUT      := $(CURDIR)/_output
export PATH := $(dir $(GO)):$(PATH)

CRI_TOOLS_VERSION := v1.36.0
# Where `make setup` installs the default CNI network (cri/cni/10-nodekit.conflist)
# when the directory holds no network config at all.
CNI_CONF_DIR ?= /etc/cni/net.d
# Debian packages the build, the tests and the sample need.
# containerd: the agent's end-to-end test on containerd 1.6 (agent/containerd_linux_test.go).
APT_PACKAGES := gcc libc6-dev libseccomp-dev pkg-config busybox-static iproute2 iptables \
	containernetworking-plugins util-linux mount procps e2fsprogs containerd

GO_SOURCES := $(shell find . -name '*.go' -not -path './_output/*' 2>/dev/null) go.mod go.sum

# Where `make controlplane` builds the Kubernetes control plane the tests start
# (internal/controlplane): outside the repository, by default
# /var/cache/nodekit/controlplane/<version of go.mod's k8s.io/api, as v1.X.Y>.
ifndef NODEKIT_CONTROLPLANE_DIR
NODEKIT_CONTROLPLANE_DIR := $(shell GO=$(GO) $(CURDIR)/examples/controlplane/build.sh --print-dir)
endif
export NODEKIT_CONTROLPLANE_DIR

.PHONY: setup build images test unit vet modcheck lint run run-cluster run-cri bench clean controlplane

## setup: install missing Debian packages and a default CNI config (idempotent; needs root)
setup:
	@missing=(); for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$$p"); \
	done; \
	if [ $${#missing[@]} -gt 0 ]; then \
		echo "setup: installing $${missing[*]}"; \
		if [ "$$(id -u)" != 0 ]; then echo "setup: run as root (sudo make ...) to install packages" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends "$${missing[@]}" >/dev/null; \
	fi; \
	test -x "$(GO)" || { echo "setup: Go not found (looked for $(GO)); install Go 1.26+" >&2; exit 1; }
	@if [ -z "$$(find "$(CNI_CONF_DIR)" -maxdepth 1 \( -name '*.conflist' -o -name '*.conf' -o -name '*.json' \) -print -quit 2>/dev/null)" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "setup: no CNI network config in $(CNI_CONF_DIR); run as root to install the default one" >&2; \
		else install -D -m 0644 cri/cni/10-nodekit.conflist $(CNI_CONF_DIR)/10-nodekit.conflist; \
			echo "setup: wrote the default CNI network config $(CNI_CONF_DIR)/10-nodekit.conflist (bridge nodekit0, 10.88.0.0/16)"; fi; \
	fi

## build: every binary into bin/ (nodekit-kubelet, nodekit-cri, nodekit-monitor, runc, crictl)
build: $(BIN)/nodekit-kubelet $(BIN)/nodekit-cri $(BIN)/nodekit-monitor $(BIN)/runc $(BIN)/crictl

$(BIN)/nodekit-kubelet: $(GO_SOURCES)
	$(GO) build -trimpath -o $@ ./examples/kubelet

$(BIN)/nodekit-cri: $(GO_SOURCES)
	$(GO) build -trimpath -o $@ ./examples/cri

# The monitor runs once per container: strip it and keep it small.
$(BIN)/nodekit-monitor: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cri/monitor/nodekit-monitor

# Build tools are pinned in their own module, tools/go.mod (`tool` directives), so that
# they stay out of the library's module graph (`make modcheck`).
# runc, built with seccomp support.
$(BIN)/runc: tools/go.mod tools/go.sum
	cd tools && $(GO) build -trimpath -tags seccomp -o $@ github.com/opencontainers/runc

# golangci-lint (v2), for `make lint`.
$(BIN)/golangci-lint: tools/go.mod tools/go.sum
	cd tools && $(GO) build -trimpath -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# crictl is built from its own module (and go.sum) at a pinned version.
$(BIN)/crictl:
	@dir=$$(GOFLAGS= $(GO) mod download -json sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	test -n "$$dir" || { echo "cannot download sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION)" >&2; exit 1; }; \
	cd "$$dir" && GOFLAGS=-mod=readonly $(GO) build -trimpath \
		-ldflags '-X sigs.k8s.io/cri-tools/pkg/version.Version=$(CRI_TOOLS_VERSION)' -o $@ ./cmd/crictl

# critest (cri-tools' CRI conformance suite, a go test binary) and ginkgo (which critest
# runs for -parallel) are built from the cri-tools module at the version crictl uses.
$(BIN)/critest:
	@dir=$$(GOFLAGS= $(GO) mod download -json sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	test -n "$$dir" || { echo "cannot download sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION)" >&2; exit 1; }; \
	cd "$$dir" && GOFLAGS=-mod=readonly $(GO) test -c -trimpath \
		-ldflags '-X sigs.k8s.io/cri-tools/pkg/version.Version=$(CRI_TOOLS_VERSION)' -o $@ ./cmd/critest

$(BIN)/ginkgo:
	@dir=$$(GOFLAGS= $(GO) mod download -json sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	test -n "$$dir" || { echo "cannot download sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION)" >&2; exit 1; }; \
	cd "$$dir" && GOFLAGS=-mod=readonly $(GO) build -trimpath -o $@ github.com/onsi/ginkgo/v2/ginkgo

## images: the sample images as reproducible OCI archives in _output/images/
images: $(OUT)/images/.built

$(OUT)/images/.built: $(shell find examples/images -type f 2>/dev/null)
	$(GO) run ./examples/images -out $(OUT)/images
	@touch $@

## controlplane: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and etcd built from the Go module proxy into $(NODEKIT_CONTROLPLANE_DIR)/bin (idempotent; cold ~10–15 min)
controlplane:
	GO=$(GO) ./examples/controlplane/build.sh

## kubelet-anchor: also the upstream kubelet, built like the control plane into $(NODEKIT_CONTROLPLANE_DIR)/bin (bench-cluster's anchor; not part of `make test`)
kubelet-anchor:
	GO=$(GO) ./examples/controlplane/build.sh kubelet

## vet: go vet over everything, and the module graph check (modcheck)
vet: modcheck
	$(GO) vet ./...

## modcheck: the main module keeps build tools out of its users' module graph: no `tool` directive in go.mod, no github.com/opencontainers/runc requirement, no runc package among the dependencies of its packages and tests (the tools are in tools/go.mod)
modcheck:
	@mod=$$($(GO) mod edit -json); \
	if grep -q '"Tool": \[' <<<"$$mod"; then \
		echo "modcheck: go.mod has a tool directive; build tools belong in tools/go.mod" >&2; exit 1; fi; \
	if grep -q '"Path": "github.com/opencontainers/runc"' <<<"$$mod"; then \
		echo "modcheck: go.mod requires github.com/opencontainers/runc; runc is a build tool (tools/go.mod), not a library dependency" >&2; exit 1; fi; \
	deps=$$($(GO) list -deps -test ./...); \
	if grep '^github.com/opencontainers/runc' <<<"$$deps" >&2; then \
		echo "modcheck: the packages above (runc's) are dependencies of nodekit's packages or tests" >&2; exit 1; fi

## lint: golangci-lint (.golangci.yml) over everything; LINT_FLAGS='--concurrency 1' on a busy machine
LINT_FLAGS ?= --concurrency 2
lint: $(BIN)/golangci-lint
	$(BIN)/golangci-lint run $(LINT_FLAGS) ./...

## unit: unit tests only (no root needed)
unit:
	$(GO) test -short -count=1 ./...

# The native Go fuzz targets, package:function. Their seed corpora (f.Add and
# the package's testdata/fuzz/<function>/) also run as plain tests under go test.
FUZZ_TARGETS := \
	./agent/podsource:FuzzParse \
	./agent:FuzzLoadConfig \
	./cri/spec:FuzzGenerate \
	./cri/layer:FuzzApply \
	./cri/layer:FuzzApplyTar \
	./cri/image:FuzzResolve \
	./cri/image:FuzzArchive \
	./cri/image:FuzzRegistryConfig \
	./cri/crilog:FuzzParseLine \
	./cri/crilog:FuzzWriterReassembles \
	./cri/seccomp:FuzzParse
FUZZTIME ?= 60s
# New inputs are minimized for at most this long (Go's default of 60s stalls
# a short run on large inputs); -parallel is the number of fuzzing workers.
FUZZMINIMIZETIME ?= 5s
FUZZPARALLEL ?= 2

.PHONY: fuzz
## fuzz: every fuzz target for FUZZTIME each (default 60s), one after another (make fuzz FUZZTIME=10m; one target: make fuzz FUZZ_TARGETS=./cri/crilog:FuzzParseLine); a crash stops it, its input kept in the package's testdata/fuzz/ (README: Fuzzing)
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) \
			-parallel $(FUZZPARALLEL) $$pkg || { echo "fuzz: $$fn in $$pkg failed" >&2; exit 1; }; \
	done

## test: vet and lint, then every test, unit and integration (root, real runc/overlayfs/cgroups)
test: setup build images vet lint controlplane
	NODEKIT_REQUIRE_INTEGRATION=1 NODEKIT_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory critest

.PHONY: soak
# Rounds of each crash test in `make soak` (make test runs a few).
SOAK_ROUNDS ?= 100
## soak: the crash-under-churn tests, long: nodekit-cri killed with SIGKILL during a CRI churn (cri TestCrashChurnShim), nodekit-kubelet during a static pod churn (agent TestCrashChurn, embedded and separate shim), SOAK_ROUNDS rounds each (default 100); prints the seeds and figures (rounds survived, containers, exit codes and log lines lost, leaks); logs in _output/soak/ (root)
soak: setup build images
	@mkdir -p $(OUT)/soak; rc=0; \
	for t in ./cri:TestCrashChurnShim ./agent:TestCrashChurn; do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "soak: $$fn in $$pkg, $(SOAK_ROUNDS) rounds, log in $(OUT)/soak/$$fn.log"; \
		NODEKIT_REQUIRE_INTEGRATION=1 NODEKIT_BIN_DIR=$(BIN) NODEKIT_SOAK_ROUNDS=$(SOAK_ROUNDS) \
			$(GO) test -count=1 -timeout 600m -run "^$$fn\$$" -v $$pkg >$(OUT)/soak/$$fn.log 2>&1 || { rc=1; echo "soak: $$fn FAILED" >&2; }; \
		grep -h -e '^Test[^ ]*: seed' -e '^CRASH-SOAK' $(OUT)/soak/$$fn.log || true; \
	done; \
	exit $$rc

## run: the sample kubelet runs the sample static pods (examples/pods) until Ctrl-C
run: setup build images
	./examples/kubelet/run.sh

## run-cluster: a control plane and two nodekit-kubelet nodes on this machine, the sample deployment of examples/cluster, a kubeconfig printed; until Ctrl-C
run-cluster: setup build images controlplane
	$(GO) run ./examples/cluster -bin $(BIN) -images $(OUT)/images $(CLUSTER_FLAGS)

## run-cri: the CRI shim alone: the sample web pod through crictl against nodekit-cri
run-cri: setup build images
	./examples/cri/demo.sh

## bench: CRI shim benchmarks, runc floor vs nodekit-cri vs containerd, then bench-critest and bench-agent (bench/README.md; root)
# Extra flags for the program: make bench BENCH_FLAGS='-iterations 10 -keep-going'
bench: setup build images bench-containerd
	$(GO) run ./bench/crishim -bin $(BIN) -images $(OUT)/images -json $(OUT)/bench/crishim.json $(BENCH_FLAGS)
	$(MAKE) --no-print-directory bench-critest
	$(MAKE) --no-print-directory bench-agent

.PHONY: bench-containerd bench-critest
# Debian's containerd, the runtime the benchmarks compare with.
bench-containerd:
	@dpkg-query -W -f='$${Status}' containerd 2>/dev/null | grep -q 'ok installed' || { \
		echo "bench: installing containerd"; \
		if [ "$$(id -u)" != 0 ]; then echo "bench: run as root (sudo make bench) to install containerd" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends containerd >/dev/null; \
	}

## bench-critest: `critest -benchmark` against nodekit-cri and containerd, and the exit-to-event latency (bench/README.md; root)
# Extra flags: make bench-critest BENCH_CRITEST_FLAGS='-critest-rounds 1 -exits 50'
bench-critest: setup build images bench-containerd $(BIN)/critest
	$(GO) run ./bench/crishim -mode critest -bin $(BIN) -images $(OUT)/images -critest-out $(OUT)/bench/critest \
		-json $(OUT)/bench/critest.json $(BENCH_CRITEST_FLAGS)

.PHONY: bench-agent bench-cluster kubelet-anchor
## bench-agent: the agent's benchmark: exit → status latency (evented vs generic PLEG), idle CPU/memory of nodekit-kubelet with 100 pods, relist durations (bench/README.md; root)
# Extra flags: make bench-agent BENCH_AGENT_FLAGS='-parts idle -window 30s'
bench-agent: setup build images
	$(GO) run ./bench/agent -bin $(BIN) -images $(OUT)/images -json $(OUT)/bench/agent.json $(BENCH_AGENT_FLAGS)

## bench-cluster: cluster mode against the upstream kubelet on one control plane: create → Running, exit → status, 100 idle pods (API requests, CPU, memory); nodekit-kubelet vs kubelet on containerd and on nodekit-cri (bench/README.md; root)
# Extra flags: make bench-cluster BENCH_CLUSTER_FLAGS='-agents nodekit -pods 20 -window 1m'
bench-cluster: setup build images bench-containerd kubelet-anchor
	$(GO) run ./bench/cluster -bin $(BIN) -images $(OUT)/images -json $(OUT)/bench/cluster.json $(BENCH_CLUSTER_FLAGS)

.PHONY: bench-exitcost
## bench-exitcost: CRI calls and CPU per container exit (restartPolicy Never and Always) and exit → status p99 (evented PLEG), nodekit-kubelet and bench/agent built from OLD against this tree, in one run: make bench-exitcost OLD=<commit> (bench/README.md; root)
# Extra flags: make bench-exitcost OLD=677bdb5~1 BENCH_EXITCOST_FLAGS='-exitcost-pods 10 -exits 50' BENCH_EXITCOST_OLD_FLAGS='-exits 50'
bench-exitcost: setup build images
	@test -n "$(OLD)" || { echo "bench-exitcost: name the old commit: make bench-exitcost OLD=<commit>" >&2; exit 2; }
	@sha=$$(git rev-parse --short=12 '$(OLD)^{commit}'); old=$(OUT)/old-$$sha; tmp=$$(mktemp -d /tmp/nkexitcost-XXXXXX); \
	trap 'git worktree remove --force "$$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$$tmp"; git worktree prune' EXIT; \
	echo "bench-exitcost: building $(OLD) ($$sha) in a worktree, into $$old"; \
	git worktree add --detach "$$tmp/tree" "$$sha" >/dev/null 2>&1; \
	(cd "$$tmp/tree" && $(GO) build -trimpath -o "$$old/nodekit-kubelet" ./examples/kubelet && $(GO) build -trimpath -o "$$old/bench-agent" ./bench/agent); \
	mkdir -p $(OUT)/bench; \
	echo "bench-exitcost: exit → status with the old program ($$sha)"; \
	(cd "$$tmp/tree" && "$$old/bench-agent" -parts exits -plegs evented -bin $(BIN) -images $(OUT)/images \
		-json $(OUT)/bench/exitcost-old-exits.json $(BENCH_EXITCOST_OLD_FLAGS)); \
	echo "bench-exitcost: exit → status with this tree's program, then the cost per exit, $$sha against bin/"; \
	$(GO) run ./bench/agent -parts exits,exitcost -plegs evented -bin $(BIN) -images $(OUT)/images -old-bin "$$old" \
		-old-exits $(OUT)/bench/exitcost-old-exits.json -json $(OUT)/bench/exitcost.json $(BENCH_EXITCOST_FLAGS)

.PHONY: critest
## critest: the CRI conformance suite against a private nodekit-cri, offline (examples/critest; root)
# Extra flags for the runner: make critest CRITEST_FLAGS='-focus Image -v'
critest: setup build images $(BIN)/critest $(BIN)/ginkgo
	$(GO) run ./examples/critest -bin $(BIN) -out $(OUT)/critest -pause $(OUT)/images/pause.tar $(CRITEST_FLAGS)

clean:
	rm -rf $(BIN) $(OUT)
