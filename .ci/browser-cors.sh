#!/usr/bin/env bash
# CORS proven in a real browser: the reference server with CORS on for one origin, a page
# served from that origin and from a foreign one, loaded in headless Chromium. Checks, from the
# page's own point of view, that the allowed origin's credentialed fetch succeeds and can read
# Retry-After on a 429, and that the foreign origin's fetches are blocked.
# Usage: .ci/browser-cors.sh path/to/echotuner
set -euo pipefail
server_bin=${1:?path to the echotuner example binary}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

api_port=18100 allowed_port=18101 foreign_port=18102
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cp "$here/browser/page.html" "$work/index.html"
(cd "$work" && exec python3 -m http.server "$allowed_port" --bind 127.0.0.1 >/dev/null 2>&1) & pids+=($!)
(cd "$work" && exec python3 -m http.server "$foreign_port" --bind 127.0.0.1 >/dev/null 2>&1) & pids+=($!)
# One request per minute per client, so the page's second fetch gets a 429.
env -i PATH="$PATH" BIND="127.0.0.1:$api_port" CORS_ENABLED=true \
  ALLOWED_ORIGINS="http://localhost:$allowed_port" CORS_ALLOW_CREDENTIALS=true \
  RATE_LIMIT_REQUESTS_PER_MINUTE=1 "$server_bin" >/dev/null 2>"$work/server.log" & pids+=($!)

for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$api_port/config/health" >/dev/null 2>&1 && break
  sleep 0.1
done

visit() { # origin → what the page printed
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$RANDOM" --virtual-time-budget=10000 \
    --dump-dom "$1/index.html?api=http://localhost:$api_port" 2>/dev/null \
    | sed -n '/<pre id="out">/,/<\/pre>/p'
}

allowed=$(visit "http://localhost:$allowed_port")
foreign=$(visit "http://127.0.0.1:$foreign_port")
echo "allowed origin saw:"; echo "$allowed"
echo "foreign origin saw:"; echo "$foreign"

fail=0
grep -q "first status=200 " <<<"$allowed" || { echo "FAIL: the allowed origin's first fetch did not succeed"; fail=1; }
grep -Eq "second status=429 retry-after=[0-9]+ body-readable=true" <<<"$allowed" \
  || { echo "FAIL: the allowed origin could not read Retry-After and the body of a 429"; fail=1; }
[ "$(grep -c "blocked=TypeError" <<<"$foreign")" = 2 ] \
  || { echo "FAIL: the foreign origin's fetches were not blocked"; fail=1; }
[ $fail = 0 ] && echo "cors-browser: 3 passed, 0 failed"
exit $fail
