# Sluice: one Makefile is the entry point. `make help` lists the targets.

GO       ?= go
BIN      := bin/sluice
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMAGE    ?= sluice
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.DEFAULT_GOAL := help
.PHONY: help build build-prod run test test-apiserver apiserver-bin bench bench-shipper lint fmt fuzz image manifests generate image-controller loadtest

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/sluice (every command; make run needs it)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

build-prod: ## build bin/sluice-prod as the image does: -tags nodev leaves out dev and loadtest (a smaller footprint on every node)
	$(GO) build -trimpath -tags nodev -ldflags '$(LDFLAGS)' -o bin/sluice-prod ./cmd/sluice

image: ## docker build the image sluice:<version> (IMAGE= renames it); needs a Docker engine, which the development machines lack
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

image-controller: ## docker build the image sluice-controller:<version>, the Dockerfile's controller target
	docker build --target controller -t $(IMAGE)-controller:$(VERSION) .

run: build ## run the whole pipeline in one process (sluice dev): embedded Kafka and Elasticsearch, a demo workload
	./$(BIN) dev

# phase runs the commands $(2) of the test phase $(1) between two lines, the
# second with the time the phase took: go test says nothing about a package
# until the package is done, and the race phase takes minutes.
define phase
start=$$(date +%s); echo "==> $$(date +%T) $(1)"; \
if ( $(2) ); then echo "==> $$(date +%T) $(1): ok in $$(( $$(date +%s) - start ))s"; \
else echo "==> $$(date +%T) $(1): FAILED after $$(( $$(date +%s) - start ))s"; exit 1; fi
endef

# The allocation tests run again without the race detector, under which allocation counts
# mean nothing. deploy/ is its own module (Helm, Kubernetes and Prometheus libraries stay out
# of the pipeline's). Its tests render and decode files and run no goroutines of their own,
# so they run without the race detector, which would add minutes of compiling those
# libraries. controller/ is its own module too: controller-runtime links client-go's
# clientset, which the pipeline's binary (the shipper on every node) must not pay for. The
# API server test (make test-apiserver) is only vetted here: running it needs etcd and
# kube-apiserver, minutes to build cold; vetting keeps it compiling as the code moves.
test: ## vet, run every test with the race detector, the allocation tests without it, and the deployment and controller tests; a line per phase with its time
	@begin=$$(date +%s); \
	$(call phase,vet,$(GO) vet ./... && $(GO) vet -tags nodev ./cmd/sluice); \
	$(call phase,race tests of the main module,$(GO) test -race -timeout 10m ./...); \
	$(call phase,allocation tests (no race detector),$(GO) test -run 'Allocs$$' ./...); \
	$(call phase,deploy module: vet and tests,cd deploy && $(GO) vet ./... && $(GO) test -timeout 5m ./...); \
	$(call phase,controller module: vet and race tests,cd controller && $(GO) vet ./... && $(GO) vet -tags apiserver . && $(GO) test -race -timeout 5m ./...); \
	echo "==> $$(date +%T) make test: every phase ok in $$(( $$(date +%s) - begin ))s"

test-apiserver: ## run sluice-controller against a real etcd and kube-apiserver with a fake Kafka (not in make test: the first build of the API server takes minutes)
	@# build.sh prints the directory of the binaries: envtest finds them through KUBEBUILDER_ASSETS.
	assets=$$(GO=$(GO) controller/hack/apiserver/build.sh) && \
	  cd controller && KUBEBUILDER_ASSETS=$$assets $(GO) test -tags apiserver -count=1 -timeout 20m -run '^TestAPIServer$$' .

apiserver-bin: ## only build etcd and kube-apiserver (as test-apiserver does) into ~/.cache/sluice/ ($XDG_CACHE_HOME/sluice/ when set)
	@GO=$(GO) controller/hack/apiserver/build.sh >/dev/null

generate: ## regenerate the controller's deepcopy code and the chart's CRDs from controller/v1alpha1 (a test fails when they are stale)
	cd controller && $(GO) test -count=1 -run '^TestGeneratedUpToDate$$' -update .

manifests: ## render deploy/kubernetes/sluice.yaml from the Helm chart's defaults (a test fails when it is stale)
	cd deploy && $(GO) test -count=1 -run '^TestManifestsUpToDate$$' -update .

loadtest: build ## run the long load test scenarios (loadtest/scenarios; about 3-6 minutes each); SCENARIOS= picks some
	@set -e; for s in $${SCENARIOS:-steady-20k three-nodes chaos-kill9 es-429-storm kafka-outage}; do \
	  ./$(BIN) loadtest loadtest/scenarios/$$s.yaml; \
	done

bench: ## run the benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

bench-shipper: ## measure the shipper on the standard node workload: a 2,000,000-line drain and 20,000 lines/s live (about 3 minutes)
	$(GO) test -run '^$$' -bench '^BenchmarkShipper(Drain|Live20k)$$' -benchtime 1x -timeout 30m ./cmd/sluice/

fuzz: ## run each fuzz test for FUZZTIME (default 10s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-10s} $$pkg || exit 1; \
	  done; \
	done

lint: ## gofmt, vet, and check that both modules' go.mod/go.sum are tidy
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd deploy && $(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd controller && $(GO) vet ./... && $(GO) vet -tags apiserver . && $(GO) mod tidy && git diff --exit-code go.mod go.sum

fmt: ## format the code
	gofmt -w .
