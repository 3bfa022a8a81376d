#!/usr/bin/env bash
# Ingest throughput benchmark: signed Shopify webhooks per second through `orderbridge
# ingest` with acks=all to tansu, p50/p99 ack latency and peak resident memory, and in the
# same run the same load against the baseline a team following the seeds would write
# (bench/express-baseline: Express + HMAC + kafkajs, acks=all, 200 after the ack).
# Load generator, receiver and broker share this machine, one receiver at a time.
#
#   bench/ingest.sh                 # 20 s per receiver, 32 connections
#   SECONDS_PER_RUN=60 CONCURRENCY=64 bench/ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
run_seconds=${SECONDS_PER_RUN:-20}
concurrency=${CONCURRENCY:-32}
secret="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh
wait_port() { # port pid what
  for _ in $(seq 1 300); do
    port_free "$1" || return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited" >&2; exit 1; }
    sleep 0.1 # polling the port, bounded by the loop
  done
  echo "$3 did not open port $1" >&2; exit 1
}
peak_rss_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

echo "==> building (release)"
cargo build --release -q -p orderbridge -p orderbridge-bench
if ! command -v tansu >/dev/null 2>&1; then cargo install --locked tansu --features dynostore,libsql; fi
(cd bench/express-baseline && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })

echo "==> tansu"
kafka_port=$(free_port)
tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
  --storage-engine "memory://tansu/" >"$work/tansu.log" 2>&1 &
pids+=($!); wait_port "$kafka_port" "$!" tansu
target/release/loadgen topics --brokers "127.0.0.1:$kafka_port" \
  --topic orders.raw.v1 --topic orders.raw.baseline

results=()
measure() { # label url pid topic (a fresh topic per receiver)
  local line written
  line=$(target/release/loadgen run --url "$2" --secret "$secret" --label "$1" \
    --concurrency "$concurrency" --seconds "$run_seconds" | grep '^RESULT')
  # Every 200 must be a record on the topic: read the topic back and compare with
  # acked_total. (Reading, not watermarks: tansu's watermarks undercount under load.)
  written=$(target/release/loadgen count --consume --brokers "127.0.0.1:$kafka_port" \
    --topic "$4" | cut -d' ' -f1)
  results+=("$line peak_rss_mib=$(peak_rss_mib "$3") records_written=$written")
  echo "${results[-1]}"
}

echo "==> orderbridge ingest"
ingest_port=$(free_port)
cat >"$work/orderbridge.toml" <<TOML
[kafka]
bootstrap_servers = "127.0.0.1:$kafka_port"
[ingest]
listen = "127.0.0.1:$ingest_port"
[ingest.sources.shopify]
secrets = [{ id = "bench", secret = { env = "BENCH_SHOPIFY_SECRET" } }]
TOML
BENCH_SHOPIFY_SECRET=$secret RUST_LOG=warn \
  target/release/orderbridge --config "$work/orderbridge.toml" ingest >"$work/ingest.log" 2>&1 &
ingest_pid=$!; pids+=("$ingest_pid")
wait_port "$ingest_port" "$ingest_pid" ingest
measure orderbridge "http://127.0.0.1:$ingest_port/webhooks/shopify" "$ingest_pid" orders.raw.v1
kill "$ingest_pid"; wait "$ingest_pid" 2>/dev/null || true

echo "==> express + kafkajs baseline"
node_port=$(free_port)
KAFKA="127.0.0.1:$kafka_port" TOPIC=orders.raw.baseline SECRET=$secret PORT=$node_port \
  node bench/express-baseline/server.js >"$work/baseline.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
wait_port "$node_port" "$node_pid" baseline
measure express-kafkajs "http://127.0.0.1:$node_port/webhooks/shopify" "$node_pid" orders.raw.baseline
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true

echo
echo "==> summary ($(nproc) cores, $concurrency connections, ${run_seconds} s each)"
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
ours=${results[0]}; base=${results[1]}
printf '%-16s %10s %8s %9s %9s %12s %9s %9s\n' receiver "webhooks/s" errors "p50 ms" "p99 ms" \
  "peak RSS MiB" "200s sent" "on topic"
for r in "$ours" "$base"; do
  printf '%-16s %10s %8s %9s %9s %12s %9s %9s\n' "$(field "$r" label)" "$(field "$r" rps)" \
    "$(field "$r" errors)" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" \
    "$(field "$r" peak_rss_mib)" "$(field "$r" acked_total)" "$(field "$r" records_written)"
done
awk -v a="$(field "$ours" rps)" -v b="$(field "$base" rps)" \
    -v c="$(field "$ours" p99_ms)" -v d="$(field "$base" p99_ms)" \
    'BEGIN { printf "ratio: %.2fx the baseline'"'"'s webhooks/s; p99 %.2fx the baseline'"'"'s\n", a / b, c / d }'
