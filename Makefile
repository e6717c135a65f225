# xvs — userspace Open vSwitch-compatible datapath.
GO ?= go
PKGS := ./...

.PHONY: build test bench lint fuzz lab clean

build:
	$(GO) build -o bin/ ./cmd/...

# The whole test suite, including the netns tests (they need root; under
# CI=true they fail instead of skipping when they cannot set up).
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 25m $(PKGS)

# Throughput benchmarks (in-memory pipeline; netns harness needs root).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./bench/ ./flow/ ./bond/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

# Short fuzzing rounds of every parser (go test -fuzz needs one target per run).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 30s ./flow/
	$(GO) test -run '^$$' -fuzz FuzzParseFlow -fuzztime 30s ./flow/
	$(GO) test -run '^$$' -fuzz FuzzJSONRPC -fuzztime 30s ./ovsdb/

clean:
	rm -rf bin
