#!/usr/bin/env bash
# Provider API benchmark: how close `orderbridge backfill` (Sumeru's orders.list) and
# `orderbridge enrich` (Ordermentum getOrder) run to the provider's allowed rate, and how many
# 429s they meet, measured from the provider's side (the integration tests' simulators, with
# their token-bucket limits). The baseline in the same run is a client that only honours
# Retry-After; for Shopify (a backfill by query cost), a loop that pauses a second on
# THROTTLED. Broker: librdkafka's mock cluster, in process; see bench/src/apibench.rs.
#
#   bench/providers.sh                          # 20 requests/s, burst 5
#   bench/providers.sh --rate 50 --orders 5000 --notifications 1000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p orderbridge-bench --bin apibench
exec target/release/apibench "$@"
