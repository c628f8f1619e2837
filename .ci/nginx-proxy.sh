#!/usr/bin/env bash
# The reference server behind a real nginx that appends the client to X-Forwarded-For, with
# TRUSTED_PROXIES=127.0.0.1/32: per-client limits hold for distinct clients, a client cannot
# move to another bucket or into someone else's by writing forwarding headers, and a client
# that bypasses the proxy is judged by its own address. Distinct clients are distinct loopback
# source addresses (all of 127.0.0.0/8 is local on Linux).
# Usage: .ci/nginx-proxy.sh path/to/echotuner
set -euo pipefail
server_bin=$(realpath "${1:?path to the echotuner example binary}")

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  # policy-rc.d keeps the package's own service from starting on port 80 during install.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  [ $made_policy = 1 ] && rm -f "$policy"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  if [ ${#pids[@]} -gt 0 ]; then kill "${pids[@]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# nginx started as root runs its workers as nobody, who must reach the temp paths inside.
chmod 755 "$work"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Three requests per minute per client, so the fourth is the first 429.
limit=3
# In the work directory, so that a .env in the checkout cannot change the settings.
(cd "$work" && exec env -i PATH="$PATH" BIND=127.0.0.1:0 TRUSTED_PROXIES=127.0.0.1/32 \
  RATE_LIMIT_REQUESTS_PER_MINUTE=$limit LOG_FORMAT=json \
  "$server_bin") >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
api_port=""
for _ in $(seq 1 100); do
  api_port=$(sed -n 's|^echotuner listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$work/server.err")
  [ -n "$api_port" ] && break
  sleep 0.05
done
[ -n "$api_port" ] || { echo "echotuner did not start:" >&2; cat "$work/server.err" >&2; exit 1; }

proxy_port=$(free_port)
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log $work/logs/access.log;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  upstream echotuner { server 127.0.0.1:$api_port; }
  server {
    listen 127.0.0.1:$proxy_port;
    location / {
      proxy_pass http://echotuner;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
mkdir -p "$work/tmp"
"$nginx_bin" -p "$work" -c "$work/nginx.conf" >"$work/logs/nginx.stderr" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$proxy_port/config/health" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -sf "http://127.0.0.1:$proxy_port/config/health" >/dev/null || {
  echo "nginx did not start:" >&2
  cat "$work/logs/nginx.stderr" "$work/logs/error.log" >&2 2>/dev/null || true
  exit 1
}

# GET /search counts against the global per-IP limit (the health check is exempt); without
# X-Device-ID its own limit is keyed by the client address too, but at 100 per minute it is
# never the binding one here.
statuses() { # n, source address, port, curl args… → the n statuses, space-separated
  local n=$1 src=$2 port=$3
  shift 3
  local out=()
  for _ in $(seq 1 "$n"); do
    out+=("$(curl -s -o /dev/null -w '%{http_code}' --interface "$src" "$@" \
      "http://127.0.0.1:$port/search?q=jazz")")
  done
  echo "${out[*]}"
}

passed=0 failed=0
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then
    echo "PASS: $1 ($3)"
    passed=$((passed + 1))
  else
    echo "FAIL: $1: expected $2, got $3"
    failed=$((failed + 1))
  fi
}

ok="200 200 200"
check "client A (127.0.0.2) through nginx: $limit admitted, then refused" "$ok 429" \
  "$(statuses 4 127.0.0.2 "$proxy_port")"
check "client B (127.0.0.3) through nginx: its own bucket, untouched by A" "$ok 429" \
  "$(statuses 4 127.0.0.3 "$proxy_port")"
check "client A with a spoofed X-Forwarded-For: 198.51.100.7 is still refused" "429" \
  "$(statuses 1 127.0.0.2 "$proxy_port" -H 'X-Forwarded-For: 198.51.100.7')"
check "client A with a spoofed Forwarded: for=198.51.100.7 is still refused" "429" \
  "$(statuses 1 127.0.0.2 "$proxy_port" -H 'Forwarded: for=198.51.100.7')"
check "client A with both spoofed headers and several XFF entries is still refused" "429" \
  "$(statuses 1 127.0.0.2 "$proxy_port" -H 'X-Forwarded-For: 198.51.100.7, 203.0.113.9' \
    -H 'Forwarded: for=198.51.100.7')"
check "client C (127.0.0.4) claiming X-Forwarded-For: 127.0.0.2 is judged as itself" "$ok" \
  "$(statuses 3 127.0.0.4 "$proxy_port" -H 'X-Forwarded-For: 127.0.0.2')"
check "client D (127.0.0.5) directly, with a spoofed X-Forwarded-For: 127.0.0.3, is judged as itself" \
  "$ok 429" "$(statuses 4 127.0.0.5 "$api_port" -H 'X-Forwarded-For: 127.0.0.3')"
check "client B still refused afterwards (nobody refilled its bucket)" "429" \
  "$(statuses 1 127.0.0.3 "$proxy_port")"

check "nginx saw the clients' own addresses" "127.0.0.2 127.0.0.3 127.0.0.4" \
  "$(awk '$7 ~ /^\/search/ { print $1 }' "$work/logs/access.log" | sort -u | xargs)"
# The security log: the 429s name the real clients, never an address a client wrote.
# Identical events pass the log's flood control 5 times a minute, so each of A's 4 refusals
# (the plain one and the 3 spoofed) has its own line.
log_ips() { # → client_ip of every rate_limit_exceeded event of the ip policy, one per line
  python3 - "$work/server.out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("target") == "tower_shield::security" and e.get("event") == "rate_limit_exceeded" \
            and e.get("policy") == "ip":
        print(e.get("client_ip"))
PY
}
check "security log: A's 4 refusals, spoofed or not, are logged under 127.0.0.2" "4" \
  "$(log_ips | grep -cx '127\.0\.0\.2' || true)"
check "security log: the refused clients are exactly A, B and D" \
  "127.0.0.2 127.0.0.3 127.0.0.5" "$(log_ips | sort -u | xargs)"

echo "nginx-proxy: $passed passed, $failed failed"
if [ $failed != 0 ]; then
  echo "--- echotuner stdout ---"
  cat "$work/server.out"
  echo "--- nginx access log ---"
  cat "$work/logs/access.log"
fi
[ $failed = 0 ]
