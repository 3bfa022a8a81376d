#!/usr/bin/env bash
# Webhook to ERP, end to end: unique signed Shopify orders at fixed rates, from the scheduled
# send to the order's row in the SQLite staging table, read from the table itself by the load
# generator (bench/src/e2e.rs). In one run, one system at a time on this machine:
#
#   dev            `orderbridge dev`: mock Kafka in process, exactly-once, SQLite staging
#   tansu          ingest, processor (at-least-once: tansu has no transactions) and sink as
#                  separate processes on a tansu broker
#   bull           the "add a queue" design of the Sumeru guide (bench/bull-baseline: Express,
#                  Bull on Redis, a Bull worker upserting the same tables), Redis without
#                  persistence (an acknowledged webhook is in memory only)
#   bull-everysec  the same, Redis appendonly with appendfsync everysec (up to 1 s lost)
#   bull-always    the same, appendfsync always (fsync before the answer, like Kafka acks)
#
# Each system gets RATES (always measured) and then CLIMB, stopping after the first rate it
# cannot keep up with (keeping up: every order landed, receipt → ERP p99 under 500 ms, for
# SECONDS_PER_RATE seconds). It prints one table row per rate and the highest rate kept up.
#
#   bench/e2e.sh
#   SYSTEMS="dev bull" RATES=1000 CLIMB=2000,3000 SECONDS_PER_RATE=20 bench/e2e.sh
#   TANSU_FETCH_WAIT_MS=500 RESULTS_FILE=e2e.txt bench/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
systems=${SYSTEMS:-dev tansu bull bull-everysec bull-always}
rates=${RATES:-100,1000}
climb=${CLIMB:-1500,2000,2500,3000,4000,5000,6000}
seconds=${SECONDS_PER_RATE:-10}
fetch_wait=${TANSU_FETCH_WAIT_MS:-10}
secret="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh
wait_port() { # port pid what
  for _ in $(seq 1 600); do
    port_free "$1" || return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited:" >&2; tail -20 "$work/$3.log" >&2; exit 1; }
    sleep 0.1 # polling the port, bounded by the loop
  done
  echo "$3 did not open port $1" >&2; exit 1
}
wait_log() { # file text pid what
  for _ in $(seq 1 900); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "$4 exited:" >&2; tail -20 "$1" >&2; exit 1; }
    sleep 0.1 # polling the log, bounded by the loop
  done
  echo "$4 did not print '$2'" >&2; exit 1
}
wait_ready() { # port pid what: /readyz answers 2xx
  for _ in $(seq 1 900); do
    target/release/orderbridge probe "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited:" >&2; tail -20 "$work/$3.log" >&2; exit 1; }
    sleep 0.1 # polling readiness, bounded by the loop
  done
  echo "$3 was not ready within 90 s" >&2; exit 1
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "==> installing what the baseline needs"
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi
(cd bench/bull-baseline && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })
if [[ " $systems " == *" tansu "* ]] && ! command -v tansu >/dev/null 2>&1; then
  cargo install --locked tansu --features dynostore,libsql
fi

echo "==> building (release)"
cargo build --release -q -p orderbridge -p orderbridge-bench --bin orderbridge --bin loadgen

# RESULTS_FILE keeps the raw RESULT lines (one per system and rate) for later comparison.
results=${RESULTS_FILE:-$work/results}
: >"$results"
measure() { # label url db name=pid...
  local label=$1 url=$2 db=$3; shift 3
  local procs=()
  for p in "$@"; do procs+=(--process "$p"); done
  target/release/loadgen e2e --url "$url" --secret "$secret" --db "$db" --label "$label" \
    --rates "$rates" --climb "$climb" --seconds "$seconds" "${procs[@]}" |
    tee -a "$results" | sed -n 's/^RESULT label=\([^ ]*\) rate=\([^ ]*\) .* e2e_p99_ms=\([^ ]*\) .* keeps_up=\([^ ]*\).*/    \1 at \2\/s: p99 \3 ms, keeps up: \4/p'
}

run_dev() {
  local port registry db="$work/dev.db"
  port=$(free_port); registry=$(free_port)
  echo "==> dev (mock Kafka in process, exactly-once)"
  RUST_LOG=warn target/release/orderbridge \
    --config "$work/dev.toml" dev --listen "127.0.0.1:$port" \
    --registry-listen "127.0.0.1:$registry" --db "$db" >"$work/dev.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_log "$work/dev.log" "OrderBridge dev is running" "$pid" dev
  measure dev "http://127.0.0.1:$port/webhooks/shopify" "$db" "orderbridge=$pid"
  stop_all
}

run_tansu() {
  local kafka ingest processor sink db="$work/tansu.db"
  kafka=$(free_port); ingest=$(free_port); processor=$(free_port); sink=$(free_port)
  echo "==> tansu (ingest, processor and sink as processes; at-least-once)"
  mkdir -p "$work/tansu"
  (cd "$work/tansu" && exec tansu broker --listener-url "tcp://127.0.0.1:$kafka" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka" \
    --storage-engine "memory://tansu/") >"$work/tansu.log" 2>&1 &
  local tansu_pid=$!; pids+=("$tansu_pid")
  wait_port "$kafka" "$tansu_pid" tansu
  cat >"$work/pipeline.toml" <<TOML
[kafka]
bootstrap_servers = "127.0.0.1:$kafka"
[topic_layout]
partitions = 6
replication = 1
[ingest]
listen = "127.0.0.1:$ingest"
[ingest.sources.shopify]
secrets = [{ id = "bench", secret = { env = "BENCH_SHOPIFY_SECRET" } }]
[processor]
guarantee = "at-least-once"
listen = "127.0.0.1:$processor"
# tansu answers a fetch only once its wait is over, data or not (tansu-storage's
# service/fetch.rs sleeps out max_wait before it returns); Apache Kafka answers as soon as
# there is data. With the default 500 ms every stage would add 250-500 ms on tansu.
fetch_wait_max_ms = $fetch_wait
[sink]
listen = "127.0.0.1:$sink"
fetch_wait_max_ms = $fetch_wait
[sink.erp]
kind = "sql"
url = "sqlite://$db"
TOML
  local cfg=(--config "$work/pipeline.toml")
  RUST_LOG=warn target/release/orderbridge "${cfg[@]}" topics ensure >"$work/topics.log" 2>&1
  BENCH_SHOPIFY_SECRET=$secret RUST_LOG=warn target/release/orderbridge "${cfg[@]}" ingest \
    >"$work/ingest.log" 2>&1 &
  local ingest_pid=$!; pids+=("$ingest_pid")
  RUST_LOG=warn target/release/orderbridge "${cfg[@]}" process >"$work/processor.log" 2>&1 &
  local processor_pid=$!; pids+=("$processor_pid")
  RUST_LOG=warn target/release/orderbridge "${cfg[@]}" sink >"$work/sink.log" 2>&1 &
  local sink_pid=$!; pids+=("$sink_pid")
  # Ready, as a load balancer would wait for: ingest's producer has reached the broker.
  wait_ready "$ingest" "$ingest_pid" ingest
  wait_ready "$processor" "$processor_pid" processor
  wait_ready "$sink" "$sink_pid" sink
  measure tansu "http://127.0.0.1:$ingest/webhooks/shopify" "$db" "ingest=$ingest_pid" \
    "processor=$processor_pid" "sink=$sink_pid" "tansu=$tansu_pid"
  stop_all
}

run_bull() { # label redis-persistence-args...
  local label=$1; shift
  local redis port db="$work/$label.db"
  redis=$(free_port); port=$(free_port)
  echo "==> $label (Express + Bull on Redis $*)"
  mkdir -p "$work/$label-redis"
  redis-server --port "$redis" --bind 127.0.0.1 --dir "$work/$label-redis" --save '' "$@" \
    >"$work/$label-redis.log" 2>&1 &
  local redis_pid=$!; pids+=("$redis_pid")
  wait_port "$redis" "$redis_pid" "$label-redis"
  PORT=$port SECRET=$secret REDIS_URL="redis://127.0.0.1:$redis" DB="$db" \
    node bench/bull-baseline/server.js >"$work/$label.log" 2>&1 &
  local node_pid=$!; pids+=("$node_pid")
  wait_log "$work/$label.log" "bull baseline listening" "$node_pid" "$label"
  measure "$label" "http://127.0.0.1:$port/webhooks/shopify" "$db" "node=$node_pid" \
    "redis=$redis_pid"
  stop_all
}

# dev serves the development sources; this file gives it the run's secret instead.
cat >"$work/dev.toml" <<TOML
[ingest.sources.shopify]
secrets = [{ id = "bench", secret = { env = "BENCH_SHOPIFY_SECRET" } }]
TOML
export BENCH_SHOPIFY_SECRET=$secret

for system in $systems; do
  case $system in
    dev) run_dev ;;
    tansu) run_tansu ;;
    bull) run_bull bull --appendonly no ;;
    bull-everysec) run_bull bull-everysec --appendonly yes --appendfsync everysec ;;
    bull-always) run_bull bull-always --appendonly yes --appendfsync always ;;
    *) echo "unknown system $system (dev, tansu, bull, bull-everysec, bull-always)" >&2; exit 2 ;;
  esac
done

echo
echo "==> receipt → ERP row ($(nproc) cores; ${seconds} s at each rate; latencies in ms from each order's scheduled send)"
echo
awk '
  /^RESULT/ {
    delete f; procs = ""; cpu = 0; rss = 0
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    for (k in f) {
      if (k ~ /^cpu_ms_/) { name = substr(k, 8); cpu += f[k]
        procs = procs sprintf("%s%s %.2f s / %.0f MiB", procs == "" ? "" : ", ", name, f[k] / 1000, f["rss_mib_" name]) }
      if (k ~ /^rss_mib_/) rss += f[k]
    }
    rows[++n] = sprintf("| %s | %d/s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s |",
      f["label"], f["rate"], f["ack_p50_ms"], f["ack_p99_ms"], f["e2e_p50_ms"], f["e2e_p99_ms"],
      f["e2e_max_ms"], f["first_second_p99_ms"], f["landed_per_s"], f["missing"],
      f["keeps_up"] == "true" ? "yes" : "no", cpu / f["sent"], procs)
  }
  /^SUSTAINED/ { split($2, l, "="); split($3, r, "="); sustained[++m] = sprintf("| %s | %s |", l[2], r[2]) }
  END {
    print "| system | rate | ack p50 / p99 | p50 | p99 | max | first-second p99 | landed/s | missing | keeps up | CPU ms/order | CPU s / peak RSS per process |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) print rows[i]
    print ""
    print "| system | highest rate kept up (orders/s) |"
    print "|---|---|"
    for (i = 1; i <= m; i++) print sustained[i]
  }' "$results"
