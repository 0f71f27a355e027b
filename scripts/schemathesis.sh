#!/usr/bin/env bash
# Spec-driven REST fuzzing: schemathesis (PyPI, in a venv under .ci-cache) against the live server
# on the embedded store, using the server's own /openapi.json, with every check it has (status
# codes, content types, response schemas, negative data rejected, positive data accepted, and the
# stateful phase). Bounded in examples and time; fails on any server error or spec mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/candidate-server}
VENV=.ci-cache/schemathesis-venv
[[ -x "$BIN" ]] || { echo "$BIN missing: build it first (cargo build)" >&2; exit 1; }

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
  echo "installing schemathesis (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"
fi

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(port)
grpc_port=$(port)
data=$(mktemp -d)
"$BIN" --http-addr "127.0.0.1:$http_port" --grpc-addr "127.0.0.1:$grpc_port" --data-dir "$data" \
  --drain-period 0s --log warn >"$data/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$http_port/gtg" >/dev/null && break
  sleep 0.05
done

echo "$("$VENV/bin/schemathesis" --version) against http://127.0.0.1:$http_port/openapi.json"
timeout 600 "$VENV/bin/schemathesis" run "http://127.0.0.1:$http_port/openapi.json" \
  --checks all --max-examples 100 --output-sanitize false
kill -0 "$pid" 2>/dev/null || { cat "$data/server.log"; echo "the server died during the run" >&2; exit 1; }
