# usersync developer entry points. Everything runs on this machine without
# Docker; scripts/setup.sh installs what is missing (Debian/Ubuntu).
.PHONY: demo test down bench lint chaos fuzz

## demo: start the demo stack under ./.stack (PostgreSQL, slapd, Temporal, SCIM sandbox, worker)
demo:
	@scripts/demo.sh

## test: every test, integration tests included (they fail, not skip, when a server is missing)
test:
	@scripts/test.sh

## down: stop the demo stack (make down PURGE=1 also deletes ./.stack)
down:
	@scripts/down.sh $(if $(PURGE),--purge)

## bench: the benchmark (scripts/bench.sh)
bench:
	@if [ -x scripts/bench.sh ]; then scripts/bench.sh; else echo "bench: scripts/bench.sh does not exist yet" >&2; exit 1; fi

## chaos: the fault matrix in full (each fault 3+ times, a few thousand users); updates the README's table
chaos:
	@scripts/chaos.sh

## fuzz: explore the fuzz targets for new inputs (scripts/fuzz.sh; findings become seeds that make test runs)
fuzz:
	@scripts/fuzz.sh

## lint: gofmt and go vet
lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
