# Shell helpers the benchmark scripts share (sourced, not run).

# Whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nothing listens on, from 20000-39999.
free_port() {
  for _ in $(seq 1 50); do
    local p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}
