# reefer-dlq: build, test and lint every module of the Go workspace.
#
# The module list is read from go.work, so a module added there is built,
# tested, linted and tidied without touching this file. Run `make` for help.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Every `use` directory of go.work, without the leading "./".
MODULES := $(patsubst ./%,%,$(shell go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p'))

# The binaries of the contract: name=directory of its main package. When a
# directory has no main package yet, `make build` skips that binary.
BINARY_SOURCES := \
	reefer-manager=services/reefer-manager \
	order-retry=services/order-retry \
	container-inventory-mock=services/container-inventory-mock \
	dlq=services/dlq-cli \
	devbroker=pkg/platform/cmd/devbroker

# The production binaries link no SQLite driver (the local demo and the tests
# run the same code in-process, with it): see pkg/reefer/reeferstore/sqlite.go.
BUILD_TAGS ?= nosqlite

# Image names. Each can be overridden from the environment, e.g.
# POSTGRES_IMAGE=postgres:16 to run the tests on a public image.
export POSTGRES_IMAGE         ?= reefer-dlq/postgres:15
export REEFER_MANAGER_IMAGE   ?= reefer-dlq/reefer-manager:dev
export ORDER_RETRY_IMAGE      ?= reefer-dlq/order-retry:dev
export INVENTORY_MOCK_IMAGE   ?= reefer-dlq/container-inventory-mock:dev
export DLQ_IMAGE              ?= reefer-dlq/dlq:dev
export DEVBROKER_IMAGE        ?= reefer-dlq/devbroker:dev
export KAFKA_IMAGE            ?= $(DEVBROKER_IMAGE)
# Base of the service images; scratch needs no registry. With a registry:
# SERVICE_BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
SERVICE_BASE_IMAGE ?= scratch
IMAGE_OF = reefer-manager=$(REEFER_MANAGER_IMAGE) order-retry=$(ORDER_RETRY_IMAGE) \
	container-inventory-mock=$(INVENTORY_MOCK_IMAGE) dlq=$(DLQ_IMAGE) devbroker=$(DEVBROKER_IMAGE)

# testcontainers-go's reaper (Ryuk) removes the containers of a test run
# that was killed; it stays on by default. Only on an engine without a
# registry (NO_REGISTRY=1, which .ci/run sets) its image cannot be pulled,
# so it is disabled there (only the exact value "true" disables it).
# Inside a container the mapped ports are reached on localhost.
NO_REGISTRY ?=
ifeq ($(NO_REGISTRY),1)
export TESTCONTAINERS_RYUK_DISABLED := true
endif
ifneq ($(wildcard /.dockerenv),)
export TESTCONTAINERS_HOST_OVERRIDE ?= localhost
endif

# -race everywhere (the consumer, scheduler and offsets code is concurrent);
# it needs cgo, so it is left out, with a note, where no C compiler exists.
# -count=1 because integration results depend on images, which go test's
# cache cannot see.
RACE := $(if $(shell command -v gcc || command -v cc || command -v clang),-race,)
TEST_FLAGS ?= $(RACE) -count=1 -timeout 25m
UNIT_TEST_FLAGS ?= -short $(RACE)
# The fault campaign (tests/chaos): make test runs its checker and schedule
# tests, and the campaign itself (TestCampaign, three fixed seeds x 2,000
# orders, about 2.5 minutes) unless CHAOS_IN_TEST is 0 (a quick local run);
# make chaos runs one campaign at any time. Its summary is written to
# CHAOS_REPORT and printed at the end of make test.
CHAOS_IN_TEST ?= 1
export CHAOS_REPORT ?= $(CURDIR)/bin/chaos-report.txt
STATICCHECK_VERSION := v0.8.2
TOOLS := $(CURDIR)/bin/tools
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(TOOLS)/actionlint-$(ACTIONLINT_VERSION)
TEST_LOG := bin/test.log
# make test runs go test -json through scripts/testreport, which prints what
# go test prints and records each test's duration here: the slowest ten are
# shown at the end.
TESTREPORT := $(TOOLS)/testreport
TEST_TIMES := bin/test-times.tsv
# make test-stress: goroutines of scripts/cpuhog spinning during make test.
HOG_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# In a module loop: true when module $$m has Go files yet (go vet fails on none).
HAS_GO = [ -n "$$(find $$m -name '*.go' -not -path '*/testdata/*' -print -quit)" ]

.PHONY: help build images images-postgres images-services test test-stress test-unit docker-check \
	lint tidy tidy-check check-gowork-off env rename demo clean

help: ## List the targets
	@echo "Usage: make <target>   (modules: $(MODULES))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build every binary whose main package exists into bin/ (static, CGO_ENABLED=0)
	@mkdir -p bin; failed=""; \
	for entry in $(BINARY_SOURCES); do \
		name=$${entry%%=*}; dir=$${entry#*=}; \
		sources=$$(ls $$dir/*.go 2>/dev/null | grep -v '_test\.go$$' || true); \
		if [ -z "$$sources" ] || ! grep -qs '^package main$$' $$sources; then \
			echo "build: skip $$name ($$dir has no main package yet)"; continue; \
		fi; \
		echo "build: bin/$$name <- ./$$dir"; \
		CGO_ENABLED=0 go build -trimpath -tags '$(BUILD_TAGS)' -o bin/$$name ./$$dir || failed="$$failed $$name"; \
	done; \
	[ -z "$$failed" ] || { echo "make build: failed:$$failed" >&2; exit 1; }

images: images-postgres images-services ## Build every image the tests use, nothing pulled (Postgres from Debian packages, services from bin/)

images-postgres: ## Build the Postgres image from Debian packages (debootstrap; skipped when the recipe is unchanged)
	@case "$(POSTGRES_IMAGE)" in \
	reefer-dlq/*) bash deployments/images/postgres/build.sh "$(POSTGRES_IMAGE)" ;; \
	*) echo "images: POSTGRES_IMAGE=$(POSTGRES_IMAGE) is not built here; the engine pulls it" ;; \
	esac

images-services: build ## Build an image of each binary in bin/ on SERVICE_BASE_IMAGE (default scratch)
	@for entry in $(BINARY_SOURCES); do \
		name=$${entry%%=*}; dir=$${entry#*=}; \
		[ -x bin/$$name ] || continue; \
		image=""; for pair in $(IMAGE_OF); do [ "$${pair%%=*}" = "$$name" ] && image=$${pair#*=}; done; \
		dockerfile=deployments/images/service.Dockerfile; \
		[ -f $$dir/Dockerfile ] && dockerfile=$$dir/Dockerfile; \
		ctx=bin/.images/$$name; rm -rf $$ctx; mkdir -p $$ctx; cp bin/$$name $$ctx/; \
		echo "images: $$image <- bin/$$name ($$dockerfile, base $(SERVICE_BASE_IMAGE))"; \
		previous=$$(docker image inspect -f '{{.Id}}' $$image 2>/dev/null || true); \
		out=$$(docker build -f $$dockerfile --build-arg BASE_IMAGE=$(SERVICE_BASE_IMAGE) \
			--build-arg BINARY=$$name -t $$image $$ctx 2>&1) || { echo "$$out" >&2; exit 1; }; \
		if [ -n "$$previous" ] && [ "$$previous" != "$$(docker image inspect -f '{{.Id}}' $$image)" ]; then \
			docker rmi $$previous >/dev/null 2>&1 || true; \
		fi; \
	done

docker-check: # Stop at once, with the reason, when no Docker engine answers
	@command -v docker >/dev/null || { \
		echo "make: no Docker engine: the docker command is not installed. 'make test' needs a Docker engine; 'make test-unit' runs the tests that need none." >&2; exit 1; }
	@out=$$(timeout 30 docker version --format '{{.Server.Version}}' 2>&1) || { \
		echo "make: the Docker engine is not reachable ($${DOCKER_HOST:-unix:///var/run/docker.sock}): $$out" >&2; \
		echo "make: start Docker (or set DOCKER_HOST); 'make test-unit' runs the tests that need no engine." >&2; exit 1; }

test: ## Run every test of every module, integration included (needs a Docker engine; runs make images first)
	@$(MAKE) docker-check
	@$(if $(RACE),,echo "test: no C compiler found, running without -race (apt-get install gcc)")
	@mkdir -p bin $(TOOLS); : > $(TEST_LOG); : > $(TEST_TIMES); failed=""; \
	go build -o $(TESTREPORT) ./scripts/testreport; \
	$(MAKE) images || failed=" images"; \
	rm -f $(CHAOS_REPORT); \
	for m in $(MODULES); do \
		if ! $(HAS_GO); then echo "test: $$m (no Go packages yet)"; continue; fi; \
		skip=""; if [ "$$m" = tests/chaos ] && [ "$(CHAOS_IN_TEST)" != 1 ]; then skip="-skip ^TestCampaign$$"; echo "test: $$m without TestCampaign (CHAOS_IN_TEST=$(CHAOS_IN_TEST)); make chaos runs it"; fi; \
		echo "test: $$m"; \
		(cd $$m && go test -json $(TEST_FLAGS) $$skip ./... 2>&1) | $(TESTREPORT) -times $(TEST_TIMES) | tee -a $(TEST_LOG) || failed="$$failed $$m"; \
	done; \
	[ ! -s $(CHAOS_REPORT) ] || cat $(CHAOS_REPORT); \
	$(TESTREPORT) -slowest 10 $(TEST_TIMES); \
	ok=$$(grep -c '^ok ' $(TEST_LOG) || true); \
	fail=$$(grep -cE '^FAIL[[:space:]]' $(TEST_LOG) || true); \
	none=$$(grep -c 'no test files' $(TEST_LOG) || true); \
	echo "make test: $$none packages have no test files$${failed:+; failed:$$failed}"; \
	echo "packages: $$ok passed, $$fail failed"; \
	[ -z "$$failed" ]

test-stress: ## make test while scripts/cpuhog keeps every core busy (HOG_WORKERS, default one per core): the suite must not depend on machine speed
	@mkdir -p bin $(TOOLS)
	@go build -o $(TOOLS)/cpuhog ./scripts/cpuhog
	@start=$$SECONDS; rc=0; \
	$(TOOLS)/cpuhog -workers $(HOG_WORKERS) > bin/cpuhog.log 2>&1 & hog=$$!; \
	trap 'kill $$hog 2>/dev/null || true; wait $$hog 2>/dev/null || true' EXIT; \
	echo "test-stress: make test with $(HOG_WORKERS) busy-loop workers (cpuhog pid $$hog) on $$(nproc) cores"; \
	$(MAKE) test 2>&1 | tee bin/test-stress.log || rc=$$?; \
	kill $$hog 2>/dev/null || true; wait $$hog 2>/dev/null || true; \
	took=$$((SECONDS - start)); \
	tail -n 1 bin/cpuhog.log; \
	echo "test-stress: $$( [ $$rc = 0 ] && echo passed || echo FAILED ) in $$((took / 60))m$$((took % 60))s, load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	echo "test-stress: $$(grep '^packages:' bin/test-stress.log | tail -n 1)"; \
	exit $$rc

# The public images test-public runs the integration suite on.
PUBLIC_POSTGRES_IMAGE ?= postgres:16
PUBLIC_KAFKA_IMAGE ?= apache/kafka:4.2.0

.PHONY: test-public
test-public: ## Run the integration suite on public images (postgres:16, apache/kafka:4.2.0; needs a registry; Ryuk on)
	@$(MAKE) docker-check
	@$(MAKE) images-services
	cd tests/integration && env -u TESTCONTAINERS_RYUK_DISABLED POSTGRES_IMAGE=$(PUBLIC_POSTGRES_IMAGE) KAFKA_IMAGE=$(PUBLIC_KAFKA_IMAGE) go test $(TEST_FLAGS) ./...

test-unit: ## Run the tests that need no Docker engine (go test -short in every module)
	@failed=""; \
	for m in $(MODULES); do \
		if ! $(HAS_GO); then echo "test-unit: $$m (no Go packages yet)"; continue; fi; \
		echo "test-unit: $$m"; \
		(cd $$m && go test $(UNIT_TEST_FLAGS) ./...) || failed="$$failed $$m"; \
	done; \
	[ -z "$$failed" ] || { echo "make test-unit: failing modules:$$failed" >&2; exit 1; }

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	@echo "lint: installing staticcheck $(STATICCHECK_VERSION) into $(TOOLS)"
	@GOBIN=$(TOOLS) GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@mv $(TOOLS)/staticcheck $@

$(ACTIONLINT):
	@mkdir -p $(TOOLS)
	@echo "lint: installing actionlint $(ACTIONLINT_VERSION) into $(TOOLS)"
	@GOBIN=$(TOOLS) GOFLAGS= go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	@mv $(TOOLS)/actionlint $@

lint: $(STATICCHECK) $(ACTIONLINT) ## go vet, gofmt check and staticcheck over every module; actionlint on .github/workflows
	@failed=""; \
	echo "lint: .github/workflows (actionlint)"; \
	$(ACTIONLINT) || failed="$$failed actionlint"; \
	for m in $(MODULES); do \
		if ! $(HAS_GO); then echo "lint: $$m (no Go packages yet)"; continue; fi; \
		echo "lint: $$m"; \
		(cd $$m && go vet ./...) || failed="$$failed vet:$$m"; \
		unformatted=$$(gofmt -l $$m); \
		if [ -n "$$unformatted" ]; then echo "gofmt: not formatted (run gofmt -w):"; echo "$$unformatted"; failed="$$failed gofmt:$$m"; fi; \
		(cd $$m && $(STATICCHECK) ./...) || failed="$$failed staticcheck:$$m"; \
	done; \
	[ -z "$$failed" ] || { echo "make lint: failed:$$failed" >&2; exit 1; }

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do echo "tidy: $$m"; (cd $$m && GOWORK=off go mod tidy); done

tidy-check: ## Fail when go mod tidy would change a go.mod or go.sum
	@failed=""; \
	for m in $(MODULES); do \
		(cd $$m && GOWORK=off go mod tidy -diff) || failed="$$failed $$m"; \
	done; \
	[ -z "$$failed" ] || { echo "make tidy-check: not tidy (run make tidy):$$failed" >&2; exit 1; }

check-gowork-off: ## Build and vet every module on its own (GOWORK=off), as a consumer of one module would
	@failed=""; \
	for m in $(MODULES); do \
		if ! $(HAS_GO); then echo "check-gowork-off: $$m (no Go packages yet)"; continue; fi; \
		echo "check-gowork-off: $$m"; \
		(cd $$m && GOWORK=off go build -o /dev/null ./... && GOWORK=off go vet ./...) || failed="$$failed $$m"; \
	done; \
	[ -z "$$failed" ] || { echo "make check-gowork-off: failing modules:$$failed" >&2; exit 1; }

env: ## Print the test environment; eval "$(make -s env)" before running go test by hand
	@for v in TESTCONTAINERS_RYUK_DISABLED $(if $(TESTCONTAINERS_HOST_OVERRIDE),TESTCONTAINERS_HOST_OVERRIDE) \
		POSTGRES_IMAGE KAFKA_IMAGE REEFER_MANAGER_IMAGE ORDER_RETRY_IMAGE INVENTORY_MOCK_IMAGE DLQ_IMAGE DEVBROKER_IMAGE; do \
		echo "export $$v=$${!v:-}"; \
	done

rename: ## Give a fork its own module path: make rename MODULE=example.com/you/project
	@[ -n "$(MODULE)" ] || { echo "make rename: set MODULE, e.g. make rename MODULE=example.com/acme/coldchain" >&2; exit 1; }
	@cd scripts && GOWORK=off go run ./rename -root .. -to "$(MODULE)"

.PHONY: chaos
chaos: ## Run the fault campaign (tests/chaos): make chaos SEED=7 ORDERS=20000 (defaults: a new seed, 2000 orders); a failure prints the seed and its schedule
	@$(MAKE) docker-check
	@$(MAKE) images-postgres build
	@seed="$(SEED)"; seed=$${seed:-$$(date +%s)}; \
	orders="$(if $(filter command line,$(origin ORDERS)),$(ORDERS),2000)"; \
	echo "chaos: seed $$seed, $$orders orders (replay: make chaos SEED=$$seed ORDERS=$$orders)"; \
	cd tests/chaos && CHAOS_SEEDS=$$seed CHAOS_ORDERS=$$orders go test -count=1 -timeout 90m -v -run '^TestCampaign$$' .

.PHONY: bench
bench: ## Measure the pattern against the blocking designs, side by side (bench/; ~4 min on 2 cores; results in bench/results/; BENCH_FLAGS="--profile" or "--quick --cases 3,4")
	@$(MAKE) docker-check
	@$(MAKE) images-postgres build
	cd bench && go run . --bin ../bin --out results $(BENCH_FLAGS)

demo: ## Run the narrated scenario in one process, nothing but Go needed (flags: DEMO_FLAGS="--seed 7 --speed 0.5")
	@mkdir -p bin
	@go build -o bin/demo ./deployments/local
	@bin/demo $(DEMO_FLAGS)

clean: ## Remove bin/ (binaries, image contexts, installed tools, test log)
	rm -rf bin

# ---- Deployments (deployments/README.md): the compose stack on real Kafka
# and Postgres, the load driver, and the checks CI can run without a registry.

# docker compose (v2) when the docker CLI has it, else docker-compose (v1.28+).
# Recursive (=): evaluated only by the targets that use it.
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo docker compose; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)
COMPOSE_PROJECT ?= reefer-dlq
# Optional compose profiles, space- or comma-separated: cluster observe tools.
PROFILES ?=
COMPOSE_RUN = $(COMPOSE) -f deployments/compose/compose.yaml -p $(COMPOSE_PROJECT)
ALL_PROFILES = --profile cluster --profile observe --profile tools
ORDERS ?= 10000
RATE ?= 500
BROKERS ?= localhost:9092

.PHONY: up down logs load validate-deployments

REQUIRE_COMPOSE = [ -n "$(COMPOSE)" ] || { echo "make: neither 'docker compose' (Compose v2) nor 'docker-compose' (v1.28+) is installed" >&2; exit 1; }

up: ## Start Kafka (KRaft), Postgres, the topics and the services with compose (PROFILES="cluster observe"; pulls public images)
	@$(REQUIRE_COMPOSE)
	@profiles="$(PROFILES)"; profiles="$${profiles//,/ }"; flags=""; \
	for p in $$profiles; do flags="$$flags --profile $$p"; done; \
	case " $$profiles " in *" cluster "*) \
		export KAFKA_REPLICATION_FACTOR=$${KAFKA_REPLICATION_FACTOR:-3} KAFKA_MIN_INSYNC_REPLICAS=$${KAFKA_MIN_INSYNC_REPLICAS:-2};; \
	esac; \
	case " $$profiles " in *" observe "*) \
		export OTEL_EXPORTER_OTLP_ENDPOINT=$${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318};; \
	esac; \
	echo "up: $(COMPOSE_RUN)$$flags up -d --build"; \
	$(COMPOSE_RUN) $$flags up -d --build; \
	echo "up: Kafka localhost:9092, inventory admin API localhost:8081 (make logs SERVICE=reefer-manager)"; \
	case " $$profiles " in *" observe "*) \
		echo "up: Grafana http://localhost:3000 (dashboard Reefer DLQ), Prometheus http://localhost:9090, Kafka UI http://localhost:8090, Jaeger http://localhost:16686";; \
	esac; \
	echo "up: send orders with: make load ORDERS=10000 RATE=500"

down: ## Stop and remove the compose stack (VOLUMES=1 also deletes Kafka's and Postgres' data)
	@$(REQUIRE_COMPOSE)
	$(COMPOSE_RUN) $(ALL_PROFILES) down --remove-orphans $(if $(VOLUMES),--volumes)

logs: ## Follow the compose stack's logs (SERVICE=order-retry for one service)
	@$(REQUIRE_COMPOSE)
	$(COMPOSE_RUN) $(ALL_PROFILES) logs -f --tail=200 $(SERVICE)

load: ## Send ORDERS OrderCreated events at RATE per second to BROKERS (default 10000, 500, localhost:9092; TLS/SASL from KAFKA_* variables)
	cd deployments/loadgen && go run . -brokers "$(BROKERS)" -orders "$(ORDERS)" -rate "$(RATE)" $(LOAD_FLAGS)

validate-deployments: ## Check compose, Kustomize, Prometheus and Grafana files against the code, without running them
	cd deployments/validate && go test -count=1 ./...
