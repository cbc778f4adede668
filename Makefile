# Walsearch build targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 20s
BIN       := bin/walsearch
# Stamped into the binary: walsearch version (and --version) prints them.
VERSION   ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test test-short bench fuzz lint docs demo clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/walsearch

# The whole suite, with the race detector, against a real PostgreSQL (started
# by the tests themselves), embedded NATS and the embedded search engine.
test:
	WALSEARCH_REQUIRE_POSTGRES=1 $(GO) test -race -count=1 -timeout 30m $(PKGS)
	d=$$(mktemp -d) && $(GO) build -o $$d ./examples/... && rm -rf $$d

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Benchmarks print throughput and latency next to ceilings measured in the
# same run; nothing is asserted.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/

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
# DEMO_ARGS="-products 20000 -listen 127.0.0.1:9090".
demo: SHELL := /bin/bash
demo:
	@mkdir -p bin
	@echo "Building the demo: the first build compiles every dependency and takes a few minutes; later ones are quick."
	@set -o pipefail; $(GO) build -v -o bin/walsearch-demo ./examples/demo 2>&1 | \
	  awk '/^[A-Za-z0-9._~\/-]+$$/ { n++; if (n % 10 == 0) printf "  %d packages compiled\n", n; fflush(); next } { print; fflush() }'
	@bin/walsearch-demo $(DEMO_ARGS)

clean:
	rm -rf bin walsearch-data
