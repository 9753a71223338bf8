# The two commands of the README: `make demo` runs the system on the local stack and shows the
# result; `make test` runs every check and test after starting what they need.
#
# `make test` starts no broker itself: each integration-test binary starts its own Apache Kafka
# and Apicurio Registry containers with the `testcontainers` crate, from images that
# `deploy/testcontainers/images` builds here (once per version, no registry pull). A developer
# who exports KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL gets those instead.

# A build for the tests gains nothing from incremental compilation, which would more than double
# the target directory (9 GB of 19 GB on a clean clone); a developer's own setting is kept.
export CARGO_INCREMENTAL ?= 0

LOCAL_STACK_ENV = KAFKA_BOOTSTRAP_SERVERS=$${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092} \
	SCHEMA_REGISTRY_URL=$${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}

.PHONY: demo test disk-check lint images stack-up stack-down bench

demo:
	$(LOCAL_STACK_ENV) deploy/local/demo

test: disk-check lint images
	@mkdir -p .hush
	@rc=0; bash -o pipefail -c 'cargo test --workspace --no-fail-fast 2>&1 | tee .hush/test.log' || rc=$$?; \
	awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' .hush/test.log; \
	echo "broker and registry: $$(grep -c 'testcontainers started' .hush/test.log) container sets started by testcontainers, $$(grep -c 'using the broker named by\|starting the JVM stack' .hush/test.log) other stacks (see [hush-tests] lines in .hush/test.log)"; \
	exit $$rc

# Warns (does not stop) when the disk has less than a clean `make test` needs (README, "Disk").
disk-check:
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$avail" -lt $${HUSH_DISK_WARN_GB:-16} ]; then echo "warning: $$avail GB free here; a clean make test needs about 16 GB (README: Quick start, Disk)" >&2; fi

images:
	deploy/local/prerequisites
	deploy/testcontainers/images up
	deploy/testcontainers/images runtime >/dev/null

lint:
	deploy/local/prerequisites
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(MAKE) --no-print-directory k8s-check deny

stack-up:
	deploy/local/prerequisites
	deploy/local/stack up

stack-down:
	deploy/local/stack down

bench: stack-up
	$(LOCAL_STACK_ENV) cargo bench -p hush-tests --bench pipeline
	$(LOCAL_STACK_ENV) cargo bench -p hush-tests --bench gate

# State at scale (tests/src/bin/scale.rs): loads SCALE_N suppression states (default 10
# million) onto a fresh compacted topic of the local stack, rebuilds the state service's table,
# the deny-list and the gate's index from it, each in a process of its own, and prints rebuild
# time, resident memory, bytes per identifier and lookups per second; the topic is deleted
# after. About 7 GB of memory and 10 minutes at 10 million. Not part of `make test`.
.PHONY: scale
scale: stack-up
	$(LOCAL_STACK_ENV) cargo run --release -q -p hush-tests --bin scale

# Supply chain and deployment checks (`make lint` runs the first two). tools/ builds kustomize
# and cargo-deny into ~/.cache/hush/tools once per version.
.PHONY: k8s-check deny audit

# deploy/k8s built with kustomize, every object decoded strictly into its Kubernetes type, and
# the hardening rules (tools/k8s-check).
k8s-check:
	tools/k8s-check/run

# Licenses, duplicate crates (warnings only) and sources (crates.io only) per deny.toml, offline.
deny:
	tools/deny -L error check --show-stats licenses bans sources

# Known vulnerabilities: fetches the RustSec advisory database, so it needs network access.
audit:
	tools/deny check advisories

# Soak under faults (tests/src/bin/faults.rs): FAULTS_REQUESTS opt-outs (default 10000) at
# FAULTS_RATE a second (default 8: the shipped partner webhook is paced at 10 calls a second, so
# a faster arrival only builds a backlog) through intake, state, auditor and two suppressors run
# as containers of Hush's runtime image, while services and the broker are killed with SIGKILL
# and restarted at random intervals drawn from FAULTS_SEED (default 1), then waits up to
# FAULTS_DRAIN seconds (default 1800) for every acknowledged request to complete. Prints how it
# ended, requests lost, duplicate confirmations, requests left UNVERIFIED/PENDING and the time
# to drain after the last fault, and keeps every container's log in target/faults/. Not part
# of `make test`.
.PHONY: faults
faults: images
	HUSH_RUNTIME_BUILD=0 cargo run -q -p hush-tests --bin faults -- \
	  --requests $${FAULTS_REQUESTS:-10000} --rate $${FAULTS_RATE:-8} --seed $${FAULTS_SEED:-1} \
	  --drain-timeout $${FAULTS_DRAIN:-1800}

# Fuzzing (tools/fuzz): every cargo-fuzz target of fuzz/ for FUZZ_SECONDS each (default 60),
# with cargo-fuzz built into ~/.cache/hush/tools. Not part of `make test`.
.PHONY: fuzz
fuzz:
	tools/fuzz $${FUZZ_SECONDS:-60}
