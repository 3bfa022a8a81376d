#!/usr/bin/env bash
# Sink benchmark: orders per second into an ERP that answers each call after 50 ms, for the
# delivery engine at 1, 8, 32 and 128 in flight and for a sequential consumer, with p50/p99
# latency from canonical record to ERP acknowledgement. Broker (librdkafka's mock cluster),
# ERP and sink run in one release-mode process; see bench/src/sinkbench.rs.
#
#   bench/sink.sh                          # 50 ms, 10 s phases
#   bench/sink.sh --latency-ms 200 --in-flight 8,64
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p orderbridge-bench --bin sinkbench
exec target/release/sinkbench "$@"
