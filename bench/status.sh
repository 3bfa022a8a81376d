#!/usr/bin/env bash
# What the status topic costs: orders per second from webhook to ERP (ingest's router, the
# exactly-once processor, the sink on SQLite staging tables, librdkafka's mock cluster, all in
# one release-mode process) with status_updates off and on, alternating rounds in one run;
# see bench/src/statusbench.rs.
#
#   bench/status.sh                        # 3 rounds of each, 3000 orders a round
#   bench/status.sh --orders 10000 --rounds 5
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p orderbridge-bench --bin statusbench
exec target/release/statusbench "$@"
