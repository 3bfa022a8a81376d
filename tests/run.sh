#!/usr/bin/env bash
# The README's test command. On a fresh machine it installs what the suite needs (system
# packages for the bundled librdkafka and TLS, rustfmt and clippy, the tansu broker), checks
# formatting and lints, starts tansu on a free 127.0.0.1 port with in-memory storage, runs
# the whole suite against it (KAFKA_BOOTSTRAP) and on librdkafka's mock cluster, and stops it.
# The console's test drives Debian's chromium with playwright-core (npm, tests/console/).
# It checks the alert rules with promtool (Debian's prometheus package) and runs their unit
# tests, and validates the Helm chart and docker-compose.yml (tests/deploy/, in a Python venv
# under target/). Then it runs every fuzz target briefly (ingest's verifiers and key extraction,
# the processor's normalizers, the sink's decoder; FUZZ_SECONDS each, default 5; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n==> %s\n' "$*"; }

step "system packages"
missing=()
# openssh-server: a real sshd (started by the EDI tests on a loopback port) for the SFTP drop.
for pkg in gcc g++ make pkg-config libssl-dev zlib1g-dev openssh-client openssh-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
else
  echo "present"
fi

step "a browser for the console's test (Debian's chromium, driven by playwright-core)"
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi
chromium --version
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
npm ci --prefix tests/console --no-audit --no-fund --loglevel=error

step "rustfmt and clippy"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo fmt --version && cargo clippy --version

step "promtool (Prometheus rule checker, from Debian's prometheus package)"
if ! command -v promtool >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
fi
promtool --version | head -1

step "alert rules: promtool check and unit tests"
promtool check rules helm/orderbridge/files/prometheus-rules.yaml
promtool test rules tests/alerts/prometheus-rules.test.yaml

step "tansu (Kafka-compatible broker)"
if ! command -v tansu >/dev/null 2>&1; then
  cargo install --locked tansu --features dynostore,libsql
fi
tansu --version 2>/dev/null || echo "tansu installed at $(command -v tansu)"

step "cargo-fuzz"
if [ "${FUZZ_SECONDS:-5}" != 0 ] && ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "deployment files: Helm chart, Kubernetes schemas, Compose specification"
# Helm's SDK, the Kubernetes schemas and Compose's loader, in a venv of the project's own.
venv=target/deploy-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
cargo build --quiet --bin orderbridge
ORDERBRIDGE_BIN=target/debug/orderbridge "$venv/bin/python" -m unittest discover -s tests/deploy -v

step "starting tansu"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 20000))
  if port_free "$candidate"; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
mkdir -p target
tansu broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine "memory://tansu/" >target/tansu.log 2>&1 &
tansu_pid=$!
trap 'kill "$tansu_pid" 2>/dev/null || true; wait "$tansu_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if ! port_free "$port"; then break; fi
  kill -0 "$tansu_pid" 2>/dev/null || { echo "tansu exited:" >&2; cat target/tansu.log >&2; exit 1; }
  sleep 0.1 # polling the port, bounded by the loop
done
port_free "$port" && { echo "tansu did not open port $port" >&2; cat target/tansu.log >&2; exit 1; }
echo "tansu listening on 127.0.0.1:$port"

step "cargo test (mock cluster, and tansu at 127.0.0.1:$port)"
export KAFKA_BOOTSTRAP="127.0.0.1:$port"
export ORDERBRIDGE_REQUIRE_BROKER=1
export ORDERBRIDGE_REQUIRE_SFTP=1
export ORDERBRIDGE_REQUIRE_BROWSER=1
# Threads through the environment: criterion's bench harness (run once as a smoke test
# here) refuses libtest's --test-threads flag.
# Panic messages without backtraces: tests that provoke panics on purpose would otherwise
# bury a real failure's message under pages of frames. OB_TEST_BACKTRACE=1 brings them back.
RUST_BACKTRACE="${OB_TEST_BACKTRACE:-0}" RUST_TEST_THREADS=4 cargo test --workspace --all-targets -- --nocapture

step "fuzzing each verifier, key extraction, normalizer and the sink's decoder for ${FUZZ_SECONDS:-5} s"
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  # No sanitizer: the project's one toolchain is stable. The targets check their own
  # properties (no panic; nothing accepted without a valid signature; what normalizes
  # encodes and reads back). The three fuzz crates share one target directory, so the
  # dependencies they have in common (librdkafka among them) are built once.
  fuzz_target_dir="$PWD/target/fuzz"
  for crate in ingest processor sink; do
    (
      cd "$crate"
      cargo fuzz build --sanitizer none -O --target-dir "$fuzz_target_dir"
      for target in $(cargo fuzz list); do
        log="$fuzz_target_dir/fuzz-$target.log"
        mkdir -p "fuzz/corpus/$target"
        # The committed seeds are read, new finds go to the (ignored) corpus directory.
        if ! cargo fuzz run --sanitizer none -O --target-dir "$fuzz_target_dir" "$target" \
          "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
          -max_total_time="${FUZZ_SECONDS:-5}" >"$log" 2>&1; then
          tail -40 "$log" >&2
          echo "fuzz target $target failed (input saved under $crate/fuzz/artifacts/)" >&2
          exit 1
        fi
        echo "fuzz: $crate/$target: $(grep -E '^Done' "$log")"
      done
    )
  done
fi
