# accessbot — see README.md.
GO        ?= go
BIN       ?= bin/accessbot
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
IMAGE     ?= accessbot:$(VERSION)
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(shell $(GO) env GOPATH)/bin/staticcheck)
# Helm is a Go module: no install needed (the first run compiles it, a few minutes).
HELM      ?= $(GO) run helm.sh/helm/v3/cmd/helm@v3.22.0

# The race detector needs cgo, so a C compiler (Go turns cgo off by itself
# when it finds none). Without it the tests run without the race detector;
# `make test` says so once.
ifeq ($(shell $(GO) env CGO_ENABLED),1)
RACE      := -race
endif

.PHONY: all build test test-short lint fmt vet staticcheck helm-lint helm-golden run demo bench bench-posthog bench-slack fuzz docker-build docker-run docker-lint clean

all: lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/accessbot

# The whole suite, with the race detector when a C compiler is present. Runs
# the database tests on PostgreSQL too when TEST_DATABASE_URL is set.
test:
ifeq ($(RACE),)
	@echo "make test: cgo is off (no C compiler found), so the tests run without the race detector"
endif
	$(GO) test $(RACE) -count=1 ./...

test-short:
	$(GO) test $(RACE) -short ./...

lint: fmt vet staticcheck helm-lint

# helm lint and helm template of deploy/helm/accessbot in both database modes,
# compared with the golden renders (helm-golden rewrites them).
helm-lint:
	HELM="$(HELM)" deploy/helm/check

helm-golden:
	UPDATE=1 HELM="$(HELM)" deploy/helm/check

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	@test -x "$(STATICCHECK)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(STATICCHECK) ./...

run: build
	$(BIN) serve

demo:
	$(GO) run ./cmd/accessbot demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# accessbot against a fake PostHog at PostHog's real limits (issue 9's targets).
bench-posthog:
	$(GO) run ./bench/posthog

# Slack at Slack's limits (issue 10): approvals under chat.update's tier,
# the Socket Mode typeahead with 150 roles, kill -9 after acknowledged clicks.
bench-slack:
	$(GO) run ./bench/slack

# Short fuzzing runs of every fuzz target (seed corpora run in `make test`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
	  done; \
	done

docker-build:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

# No Docker engine is needed to lint the Dockerfile (uses npm's dockerfilelint).
docker-lint:
	npx --yes dockerfilelint@1.8.0 Dockerfile

docker-run:
	docker run --rm -p 8080:8080 --stop-timeout 35 --env-file .env -v accessbot-data:/data $(IMAGE)

clean:
	rm -rf bin
