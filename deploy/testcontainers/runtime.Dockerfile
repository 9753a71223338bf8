# hush-test/runtime: Hush's runtime image as the tests run it, built by
# `deploy/testcontainers/images runtime` without any registry pull. It mirrors the final stage of
# the repository's Dockerfile (the binaries in /usr/local/bin, user 65532, no entrypoint: each
# Deployment names its command), on the cached debootstrap minbase root filesystem
# (hush-test/base) instead of debian:bookworm-slim, with the workspace's binaries (symbols
# stripped): debug by default, release with HUSH_RUNTIME_PROFILE=release.
ARG BASE
FROM ${BASE}
COPY bin/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT []
