# Wasmbed. `make help` lists the targets; the logic lives in hack/.
SHELL := /usr/bin/env bash -o errexit -o nounset -o pipefail
.DEFAULT_GOAL := help

export PATH := /usr/local/go/bin:$(PATH)
export KO_CONFIG_PATH := $(CURDIR)/ko.yaml

BIN            := $(CURDIR)/bin
OUT            := $(CURDIR)/_output
RUN_DIR        := $(CURDIR)/.run
CONTROLLER_GEN := $(BIN)/controller-gen
CONTROLLER_GEN_VERSION := v0.20.1
# hack/k8s-binaries.sh builds kube-apiserver, etcd and kubectl once into ~/.cache and
# prints the folder; recipes call it in their own shell so a failed build stops make.
K8S_BIN        := hack/k8s-binaries.sh
FUZZTIME       ?= 10s
# `wasmbed version` prints these; ko builds and `go install` use the module's build info.
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT         ?= $(shell git rev-parse HEAD 2>/dev/null)
GO_LDFLAGS     := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# make install puts wasmbed, its kubectl plugin link and completion helper here.
PREFIX         ?= $(HOME)/.local

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: deps build ## Run the whole platform on this machine (first run builds the apiserver, ~6 min).
	$(MAKE) -C firmware boards net
	k8s="$$($(K8S_BIN))" && $(OUT)/wasmbed dev --dir $(RUN_DIR) --bin-dir "$$k8s"

.PHONY: clean-run
clean-run: ## Wipe the state of `make run` (etcd data, certificates, logs).
	rm -rf $(RUN_DIR)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deep-copy code, CRDs and event schemas from api/.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=config/300-crds
	$(CONTROLLER_GEN) rbac:roleName=wasmbed-operator paths=./operator/... output:rbac:dir=config/200-rbac
	go test ./api/events -run '^TestSchemasAreCurrent$$' -update
	go test ./config -run '^TestEventPoliciesAreCurrent$$' -update
	@# the console's tests start an apiserver (TestMain), this one included
	k8s="$$($(K8S_BIN))" && KUBEBUILDER_ASSETS="$$k8s" go test ./console -run '^TestOpenAPIObjectsAreTheCRDs$$' -update
	npm --prefix console/web run --silent gen:api

.PHONY: verify
verify: generate ## Fail when generated files are stale, code is unformatted, go vet complains or deps.sh misses a tool the build calls.
	@git diff --exit-code -- api config/300-crds config/200-rbac config/500-eventing docs/events console/openapi.yaml console/web/src/api-types.ts || { echo "generated files are stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- api config/300-crds config/200-rbac config/500-eventing docs/events console/openapi.yaml console/web/src/api-types.ts)" || { echo "generate created untracked files:" >&2; git status --porcelain -- api config/300-crds config/200-rbac config/500-eventing docs/events console/openapi.yaml console/web/src/api-types.ts >&2; exit 1; }
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; }
	go vet ./...
	go run ./hack/depscheck

##@ Build

.PHONY: build
build: ## Build every binary into _output/.
	go build -ldflags "$(GO_LDFLAGS)" -o $(OUT)/ ./cmd/...

.PHONY: install
install: build ## Install wasmbed into PREFIX/bin (default ~/.local/bin) as the kubectl plugin too: kubectl-wasmbed links to it, kubectl_complete-wasmbed completes `kubectl wasmbed`.
	install -d $(PREFIX)/bin
	install -m 0755 $(OUT)/wasmbed $(PREFIX)/bin/wasmbed
	ln -sf wasmbed $(PREFIX)/bin/kubectl-wasmbed
	printf '#!/bin/sh\n# kubectl (1.26+) runs this to complete `kubectl wasmbed ...`.\nexec kubectl-wasmbed __complete "$$@"\n' > $(PREFIX)/bin/kubectl_complete-wasmbed
	chmod 0755 $(PREFIX)/bin/kubectl_complete-wasmbed
	@echo "installed $(PREFIX)/bin/wasmbed and the kubectl plugin kubectl-wasmbed; $(PREFIX)/bin must be on PATH"

.PHONY: deps
deps: ## Install the Debian packages the build and tests need (only what is missing).
	hack/deps.sh

##@ Test

.PHONY: test
test: deps $(CONTROLLER_GEN) ## Run every test: the firmware's host tests and spec suite, then Go (real apiserver, QEMU, Chromium).
	$(MAKE) -C firmware test boards net
	k8s="$$($(K8S_BIN))" && reg="$$(hack/registry.sh)" && KUBEBUILDER_ASSETS="$$k8s" WASMBED_REGISTRY_BIN="$$reg" go test -count=1 ./...
	@# every benchmark once, so that none stops compiling or passing unnoticed (make bench measures)
	k8s="$$($(K8S_BIN))" && reg="$$(hack/registry.sh)" && KUBEBUILDER_ASSETS="$$k8s" WASMBED_REGISTRY_BIN="$$reg" go test -count=1 -run='^$$' -bench=. -benchtime=1x ./...

.PHONY: bench
bench: deps ## Run the benchmarks (Go's, and the firmware's kernel suite on the emulated Cortex-M4F, its native-tier geomean held to BENCH_TARGET).
	k8s="$$($(K8S_BIN))" && reg="$$(hack/registry.sh)" && KUBEBUILDER_ASSETS="$$k8s" WASMBED_REGISTRY_BIN="$$reg" go test -run='^$$' -bench=. -benchmem ./...
	$(MAKE) -C firmware bench-m4

.PHONY: console-web
console-web: deps ## Rebuild the console UI into console/web/dist (commit it) and run its vitest tests.
	npm --prefix console/web test
	npm --prefix console/web run build

.PHONY: bench-gateway
bench-gateway: ## Load-test the gateway: 10,000 idle sessions, handshakes, 32 KiB fan-out (about a minute).
	GODEBUG=adaptivestackstart=0 go run ./gateway/bench -sessions 10000

.PHONY: bench-scale
bench-scale: ## Roll an Application change out to 10,000 virtual devices on two gateways, 3 times (devices in child processes; about 10 minutes on 2 cores, most of it waiting for every Device's own status).
	k8s="$$($(K8S_BIN))" && KUBEBUILDER_ASSETS="$$k8s" SCALE_DEVICES=$${SCALE_DEVICES:-10000} SCALE_GATEWAYS=$${SCALE_GATEWAYS:-2} \
		go test -count=1 -timeout 3h -run='^$$' -bench=BenchmarkApplyToAllRunning -benchtime=$${SCALE_CHANGES:-3}x -v ./test/scale/

.PHONY: fuzz
fuzz: ## Run every fuzz target: Go's for FUZZTIME each (default 10s), then the firmware's.
	hack/fuzz.sh $(FUZZTIME)
	$(MAKE) -C firmware fuzz

##@ Deployment

.PHONY: images
images: ## Build the base images (no Docker) and every ko:// image, resolve config/ into _output/wasmbed.yaml (IMAGE_REPO=registry/prefix, default a local registry).
	hack/images.sh

.PHONY: deploy
deploy: ## Push every image to IMAGE_REPO and apply the resolved config/ to the current cluster (needs Knative).
	@test -n "$${IMAGE_REPO:-}" || { echo "deploy: set IMAGE_REPO to a registry the cluster can pull from, e.g. IMAGE_REPO=ghcr.io/you/wasmbed" >&2; exit 1; }
	hack/images.sh
	k8s="$$($(K8S_BIN))" && "$$k8s/kubectl" apply -f $(OUT)/wasmbed.yaml

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
