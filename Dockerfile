# One image with every Hush binary; each Kubernetes Deployment runs one of them.
# The toolchain must build the locked dependencies (uuid 1.29 needs Rust 1.89); 1.95 is the one
# CI builds and tests with.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p hush-cli -p hush-intake -p hush-state -p hush-suppressor -p hush-auditor -p hush-denylist \
      -p hush-gate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hush /src/target/release/hush-intake \
     /src/target/release/hush-state /src/target/release/hush-suppressor \
     /src/target/release/hush-auditor /src/target/release/hush-denylist \
     /src/target/release/hush-gate /usr/local/bin/
USER 65532:65532
ENTRYPOINT []
