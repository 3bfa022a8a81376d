# syntax=docker/dockerfile:1
# The OrderBridge image: one `orderbridge` binary; the subcommand picks the role
# (`ingest`, `process`, `sink`, `topics ensure`, …). Build: `docker build -t orderbridge .`
#
# The `erp-simulator` target is the Business Central simulator the compose stack and the
# tests use (tests/support/bc_sim.rs); it is never part of the release image.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN} AS build
# librdkafka is built from source by rdkafka-sys (make, a C/C++ compiler); TLS is OpenSSL.
# Debian's point releases replace package versions, so pins would break the build: the base
# image's tag is what fixes them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin orderbridge --example erp-simulator \
 && install -D target/release/orderbridge /out/orderbridge \
 && install -D target/release/examples/erp-simulator /out/erp-simulator

FROM debian:${DEBIAN}-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 orderbridge \
 && useradd --system --uid 10001 --gid orderbridge --no-create-home --shell /usr/sbin/nologin orderbridge
USER 10001:10001
WORKDIR /tmp

FROM runtime AS erp-simulator
COPY --from=build /out/erp-simulator /usr/local/bin/erp-simulator
EXPOSE 8090
ENTRYPOINT ["erp-simulator"]
CMD ["--listen", "0.0.0.0:8090"]

FROM runtime AS orderbridge
COPY --from=build /out/orderbridge /usr/local/bin/orderbridge
# ingest 8080; processor /metrics, /healthz, /readyz 9091; sink 9092.
EXPOSE 8080 9091 9092
# The services answer /healthz and /readyz over plain HTTP; `orderbridge probe <url>` is the
# check for images without curl, e.g. a compose healthcheck:
#   test: ["CMD", "orderbridge", "probe", "http://127.0.0.1:9091/readyz"]
ENTRYPOINT ["orderbridge"]
CMD ["--help"]
