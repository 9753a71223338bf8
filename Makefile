# The two commands of the README: `make demo` runs the system on the local stack and shows the
# result; `make test` runs every check and test after starting what they need.

export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:9092
export SCHEMA_REGISTRY_URL ?= http://127.0.0.1:8081/apis/ccompat/v7

.PHONY: demo test lint stack-up stack-down bench

demo:
	deploy/local/demo

test: lint stack-up
	@mkdir -p .hush
	bash -o pipefail -c 'cargo test --workspace 2>&1 | tee .hush/test.log'
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' .hush/test.log

lint:
	deploy/local/prerequisites
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

stack-up:
	deploy/local/prerequisites
	deploy/local/stack up

stack-down:
	deploy/local/stack down

bench: stack-up
	cargo bench -p hush-tests --bench pipeline
	cargo bench -p hush-tests --bench gate
