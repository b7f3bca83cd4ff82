# circle: `make help` lists the targets.
GO       ?= go
PKG      := github.com/circle-supervisor/circle
VERSION  ?= $(shell sh packaging/version.sh 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X $(PKG)/internal/buildinfo.Version=$(VERSION) -X $(PKG)/internal/buildinfo.Commit=$(COMMIT)
export CGO_ENABLED := 0

.PHONY: help build run test fuzz test-docker test-systemd test-windows bench dist packages check fmt vet tidy-check cross clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/circled and bin/circlectl (static, CGO_ENABLED=0)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/circled ./cmd/circled
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/circlectl ./cmd/circlectl

run: build ## run circled in the foreground on conf.d/ (socket: see README)
	./bin/circled -c conf.d/circled.ini

test: ## run every test with -race, then list every skipped test and its reason (installs gcc when missing: -race needs cgo)
	@bash packaging/test-deps.sh
	CGO_ENABLED=1 $(GO) tool gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- -race -count=1 -timeout 40m ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 30s): HTTP handler, config parsers
	bash scripts/fuzz.sh

test-docker: ## PID 1 in a real container: images FROM scratch, docker stop/kill/wait/logs (needs a Docker Engine)
	bash packaging/docker/test.sh

test-systemd: ## live upgrade under a real systemd 252 booted in Docker (debootstrap once, cached in /var/tmp; skips saying why without Docker, debootstrap or Debian's mirror)
	bash packaging/systemd/test-upgrade.sh

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet for this platform and for windows, darwin, freebsd
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=freebsd $(GO) vet ./...

tidy-check: ## fail if go mod tidy would change go.mod/go.sum
	$(GO) mod tidy -diff

check: vet tidy-check ## gofmt, vet, tidy diff, cross builds, then tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(MAKE) cross
	$(MAKE) test

CROSS := linux/amd64 linux/arm64 linux/386 linux/arm linux/ppc64le linux/s390x \
	windows/amd64 windows/arm64 windows/386 darwin/amd64 darwin/arm64 freebsd/amd64 aix/ppc64

cross: ## build both programs for every release platform into bin/cross/ (CGO_ENABLED=0 -trimpath)
	@for t in $(CROSS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$t"; \
		for p in circled circlectl; do \
			GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/cross/$$os-$$arch/$$p$$ext ./cmd/$$p || exit 1; \
		done; \
	done

test-windows: ## cross-compiled Windows tests under Wine (installs wine when missing; skips with a reason if it cannot)
	bash packaging/windows/test-wine.sh

bench: ## benchmarks side by side with Debian's supervisord; writes BENCHMARKS.md
	bash bench/run.sh

dist: cross ## release archives and SHA256SUMS in dist/
	bash packaging/dist.sh

packages: ## .deb and .rpm for linux/amd64 and linux/arm64 with nfpm (go tool)
	bash packaging/packages.sh

clean: ## remove build output
	rm -rf bin dist
