# Walsearch build targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 20s
BIN       := bin/walsearch
# Stamped into the binary: walsearch version (and --version) prints them.
VERSION   ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test test-short bench chaos fuzz lint docs demo clean image release

# Release archives: one per platform, built like the image's binary (static,
# no cgo, paths trimmed), plus SHA256SUMS over them.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST      := dist
IMAGE     ?= walsearch
SHA256SUM ?= $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/walsearch

# The whole suite, with the race detector, against a real PostgreSQL (started
# by the tests themselves), embedded NATS and the embedded search engine;
# then a short chaos run (docs/chaos.md), without the race detector, which
# would slow the search engine its test hosts too much for the run to mean
# anything.
test:
	WALSEARCH_REQUIRE_POSTGRES=1 $(GO) test -race -count=1 -timeout 30m $(PKGS)
	WALSEARCH_REQUIRE_POSTGRES=1 CHAOS_DURATION=45s $(GO) test -count=1 -timeout 30m -run '^TestChaos$$' ./internal/chaos/
	d=$$(mktemp -d) && $(GO) build -o $$d ./examples/... && rm -rf $$d

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Benchmarks print throughput and latency next to ceilings measured in the
# same run; nothing is asserted.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/

# The chaos run (docs/chaos.md): a random workload while walsearch is killed
# again and again, PostgreSQL restarted and the search engine failing, then
# verify must find no drift. DURATION=30m make chaos for a bug hunt;
# CHAOS_SEED=<n> repeats a run's random choices; CHAOS_RACE=1 builds the test
# (which hosts the search engine) and walsearch with the race detector.
DURATION  ?= 10m
chaos:
	WALSEARCH_REQUIRE_POSTGRES=1 CHAOS_DURATION=$(DURATION) $(GO) test $(if $(filter 1,$(CHAOS_RACE)),-race) -count=1 -v -timeout 0 -run '^TestChaos$$' ./internal/chaos/

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Writes the generated docs (docs/configuration.md) from the code; a test
# fails when they differ.
docs:
	$(GO) generate ./internal/config

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

# A throwaway PostgreSQL with an example schema and live writes, the whole
# pipeline on embedded defaults, and the API on 127.0.0.1:8080. The build
# shows its progress (the first one compiles every dependency); compiler
# errors are shown as they are. DEMO_ARGS passes flags, e.g.
# DEMO_ARGS="-orders 20000 -listen 127.0.0.1:9090".
demo: SHELL := /bin/bash
demo:
	@mkdir -p bin
	@echo "Building the demo: the first build compiles every dependency and takes a few minutes; later ones are quick."
	@set -o pipefail; $(GO) build -v -o bin/walsearch-demo ./examples/demo 2>&1 | \
	  awk '/^[A-Za-z0-9._~\/-]+$$/ { n++; if (n % 10 == 0) printf "  %d packages compiled\n", n; fflush(); next } { print; fflush() }'
	@bin/walsearch-demo $(DEMO_ARGS)

# The container image (needs a Docker engine), stamped like `make build`.
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(or $(VERSION),dev) .

# dist/walsearch_<version>_<os>_<arch>.tar.gz for every PLATFORMS entry, and
# dist/SHA256SUMS. Needs a version: tag the commit (git tag v0.1.0) or pass
# VERSION=v0.1.0.
release:
	@test -n "$(VERSION)" || { echo "make release: no version: tag the commit (git tag v0.1.0) or run make release VERSION=v0.1.0"; exit 1; }
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=walsearch_$(VERSION)_$${os}_$${arch}; \
	  echo "build $$name"; mkdir -p $(DIST)/$$name; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false \
	    -ldflags "-s -w $(LDFLAGS)" -o $(DIST)/$$name/walsearch ./cmd/walsearch; \
	  cp README.md CHANGELOG.md $(DIST)/$$name/; \
	  tar -C $(DIST) -czf $(DIST)/$$name.tar.gz $$name; rm -rf $(DIST)/$$name; \
	done
	cd $(DIST) && $(SHA256SUM) *.tar.gz > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

clean:
	rm -rf bin dist walsearch-data
