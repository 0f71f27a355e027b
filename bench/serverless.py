#!/usr/bin/env python3
"""Cold start and per-request cost of each serverless host adapter, on this machine.

For each host, --runs times: start the release binary the platform would start, with the
environment the platform would give it, and time from process start to the first answered request
(`GET /gtg`) through the host's own path:

- lambda:          `bootstrap` polling a local stand-in for the Lambda Runtime API (the
                   `/2018-06-01/runtime/invocation/next` loop; answers streamed back, chunked, as
                   with a Function URL in RESPONSE_STREAM mode). The first event is queued before
                   the process starts, as Lambda does for a cold invocation.
- azure-functions: `handler` on FUNCTIONS_CUSTOMHANDLER_PORT, as the Functions host forwards to it.
- cloud-run:       `candidate-server --single-port` on $PORT, as Cloud Run starts the image.
- scaling-group:   `candidate-server` with its two listeners (the VM deployments), for reference.

Then, in the last run of each host, --requests sequential `GET /candidate/bench` (one candidate
written first) measure the process's CPU time per request (utime + stime from /proc, so the
client's work is not counted) and, for Lambda, the invocation's duration as Lambda bills it (from
the event handed out to the end of the streamed answer).

Every store is `memory` by default, so the figures are the adapter's and the service's, not a
store's; `--dynamodb-url` adds a Lambda row on DynamoDB Local (the store client made during init,
with its table check). Talks to 127.0.0.1 only; bounded in requests and time.

    cargo build --release --locked -p candidates-server -p candidates-lambda -p candidates-functions
    python3 bench/serverless.py [--runs 11] [--requests 5000] [--dynamodb-url http://127.0.0.1:8000]
"""
import argparse
import http.client
import json
import os
import queue
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TICKS = os.sysconf("SC_CLK_TCK")
RUNTIME = "/2018-06-01/runtime"
DEADLINE = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); index 11 and 12 after the comm field.
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def base_env(data_dir):
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CANDIDATES_STORE": "memory",
        "CANDIDATES_DATA_DIR": data_dir,
        "CANDIDATES_LOG": "warn",
        "CANDIDATES_LOG_FORMAT": "json",
        # Stopped between runs: no drain to wait through.
        "CANDIDATES_DRAIN_PERIOD": "0s",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --- a stand-in for the Lambda Runtime API --------------------------------------------------

class QuietServer(ThreadingHTTPServer):
    """A function stopped between runs resets its `invocation/next` connection: not an error."""

    def handle_error(self, request, client_address):
        pass


class Runtime:
    """Hands out queued events on `invocation/next` and collects the streamed answers."""

    def __init__(self, quick_ack=True):
        self.quick_ack = quick_ack
        self.events = queue.Queue()
        self.answers = {}
        self.handed_out = {}
        self.durations = []
        self.lock = threading.Lock()
        self.server = QuietServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, method, path, body=b""):
        """Queues an invocation; returns a waiter for its (status, body)."""
        request_id = str(uuid.uuid4())
        done = threading.Event()
        with self.lock:
            self.answers[request_id] = (done, None)
        event = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"host": "fakeurl.lambda-url.us-east-1.on.aws", "content-type": "application/json"},
            "requestContext": {
                "accountId": "anonymous", "apiId": "fakeurl", "domainName": "fakeurl.lambda-url.us-east-1.on.aws",
                "domainPrefix": "fakeurl", "requestId": request_id, "routeKey": "$default", "stage": "$default",
                "time": "06/Dec/2026:09:00:00 +0000", "timeEpoch": 1796547600000,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                         "userAgent": "bench"},
            },
            "body": body.decode(), "isBase64Encoded": False,
        }
        self.events.put((request_id, json.dumps(event).encode()))

        def wait():
            if not done.wait(DEADLINE):
                raise SystemExit("the function did not answer within 60 s")
            with self.lock:
                return self.answers.pop(request_id)[1]
        return wait

    def handler(self):
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm and the client's
            # delayed ACK each answer would wait 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def quick_ack(self):
                if not runtime.quick_ack:
                    return
                # The runtime client (lambda_runtime_api_client, hyper's HttpConnector) leaves
                # Nagle's algorithm on and writes a streamed answer in several pieces: a peer
                # that delays its ACKs (Linux does, up to 40 ms) would hold each piece back. ACK
                # at once, as a Runtime API tuned for it would; docs/serverless.md says what
                # happens otherwise.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

            def read_body(self):
                self.quick_ack()
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = bytearray()
                    while True:
                        self.quick_ack()
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return bytes(data)
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{RUNTIME}/invocation/next":
                    return self.reply(404)
                request_id, event = runtime.events.get()
                with runtime.lock:
                    runtime.handed_out[request_id] = time.perf_counter()
                self.reply(200, event, [
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:candidates"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ("Content-Type", "application/json"),
                ])

            def do_POST(self):
                body = self.read_body()
                parts = self.path.split("/")
                if self.path.startswith(f"{RUNTIME}/invocation/") and parts[-1] in ("response", "error"):
                    request_id = parts[-2]
                    ended = time.perf_counter()
                    with runtime.lock:
                        runtime.durations.append(ended - runtime.handed_out.pop(request_id, ended))
                        done, _ = runtime.answers[request_id]
                        runtime.answers[request_id] = (done, (parts[-1], streamed_status(body)))
                    done.set()
                    return self.reply(202)
                if self.path == f"{RUNTIME}/init/error":
                    raise SystemExit(f"init error: {body[:200]!r}")
                self.reply(404)

        return Handler


def streamed_status(body):
    """The status of a streamed answer: a JSON prelude, 8 NUL bytes, then the body."""
    prelude, _, _ = body.partition(b"\x00" * 8)
    try:
        return json.loads(prelude).get("statusCode", 200)
    except ValueError:
        return None


# --- the hosts ----------------------------------------------------------------------------

def http_get_until_200(port, path, proc, started):
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return time.perf_counter()
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"exited with {proc.returncode}")
        if time.perf_counter() - started > DEADLINE:
            raise SystemExit("no 200 within 60 s")
        time.sleep(0.0005)


def http_load(port, requests):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/candidate/bench")
    assert conn.getresponse().read() is not None
    for _ in range(requests):
        conn.request("GET", "/candidate/bench")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET answered {response.status}")


def run_http_host(name, command, env, port, requests):
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = http_get_until_200(port, "/gtg", proc, started)
        cold_ms = (ready - started) * 1000
        result = {"cold_ms": cold_ms}
        if requests:
            before = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            http_load(port, requests)
            result["wall_us"] = (time.perf_counter() - t0) / requests * 1e6
            result["cpu_us"] = (cpu_seconds(proc.pid) - before) / requests * 1e6
            result["rss_mib"] = rss_kib(proc.pid) / 1024
        return result
    finally:
        proc.terminate()
        proc.wait(10)


def run_lambda(binary, env, requests, quick_ack=True):
    runtime = Runtime(quick_ack)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=runtime.address, AWS_LAMBDA_FUNCTION_NAME="candidates",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
               AWS_LAMBDA_LOG_STREAM_NAME="2026/12/06/[$LATEST]0123456789abcdef",
               AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/candidates", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    first = runtime.invoke("GET", "/gtg")
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kind, status = first()
        if kind != "response" or status != 200:
            raise SystemExit(f"first invocation: {kind} {status}")
        result = {"cold_ms": (time.perf_counter() - started) * 1000}
        if requests:
            if runtime.invoke("POST", "/candidate/bench")()[1] != 200:
                raise SystemExit("POST /candidate/bench failed")
            runtime.durations.clear()
            before = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            for _ in range(requests):
                kind, status = runtime.invoke("GET", "/candidate/bench")()
                if status != 200:
                    raise SystemExit(f"GET answered {kind} {status}")
            result["wall_us"] = (time.perf_counter() - t0) / requests * 1e6
            result["cpu_us"] = (cpu_seconds(proc.pid) - before) / requests * 1e6
            result["billed_ms"] = statistics.median(runtime.durations) * 1000
            result["rss_mib"] = rss_kib(proc.pid) / 1024
        return result
    finally:
        proc.terminate()
        proc.wait(10)
        runtime.server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--release-dir", default="target/release")
    parser.add_argument("--dynamodb-url", help="also run Lambda on this DynamoDB Local endpoint")
    parser.add_argument("--hosts", default="lambda,azure-functions,cloud-run,scaling-group")
    parser.add_argument("--delayed-ack", action="store_true",
                        help="also run Lambda against a Runtime API stand-in that delays its ACKs (Linux's default)")
    args = parser.parse_args()
    if args.runs < 1 or not 0 <= args.requests <= 100_000:
        raise SystemExit("--runs >= 1 and --requests within 0..100000")
    release = args.release_dir

    def hosts():
        for host in args.hosts.split(","):
            if host == "lambda":
                yield "lambda (memory)", lambda env, n: run_lambda(f"{release}/bootstrap", env, n)
                if args.delayed_ack:
                    yield "lambda (memory, delayed ACKs)", lambda env, n: run_lambda(
                        f"{release}/bootstrap", env, n, quick_ack=False)
                if args.dynamodb_url:
                    def on_dynamodb(env, n):
                        table = f"bench-{uuid.uuid4().hex[:12]}"
                        create_table(args.dynamodb_url, table)
                        env = dict(env, CANDIDATES_STORE="dynamodb", CANDIDATES_DYNAMODB_TABLE=table,
                                   CANDIDATES_DYNAMODB_ENDPOINT=args.dynamodb_url)
                        return run_lambda(f"{release}/bootstrap", env, n)
                    yield "lambda (DynamoDB Local)", on_dynamodb
            elif host == "azure-functions":
                def azure(env, n):
                    port = free_port()
                    env = dict(env, FUNCTIONS_CUSTOMHANDLER_PORT=str(port), WEBSITE_INSTANCE_ID="bench")
                    return run_http_host(host, [f"{release}/handler"], env, port, n)
                yield "azure-functions", azure
            elif host == "cloud-run":
                def cloud_run(env, n):
                    port = free_port()
                    env = dict(env, PORT=str(port))
                    return run_http_host(host, [f"{release}/candidate-server", "--single-port"], env, port, n)
                yield "cloud-run (--single-port)", cloud_run
            elif host == "scaling-group":
                def scaling_group(env, n):
                    port, grpc = free_port(), free_port()
                    command = [f"{release}/candidate-server", "--http-addr", f"127.0.0.1:{port}",
                               "--grpc-addr", f"127.0.0.1:{grpc}", "--drain-period", "0s"]
                    return run_http_host(host, command, env, port, n)
                yield "scaling-group (VM binary)", scaling_group
            else:
                raise SystemExit(f"unknown host {host}")

    print(f"{args.runs} cold starts per host (median), then {args.requests} sequential GETs in the last run")
    print(f"{'host':28} {'cold start ms':>14} {'min..max':>14} {'CPU us/req':>11} {'wall us/req':>12} "
          f"{'billed ms':>10} {'RSS MiB':>8}")
    for name, run in hosts():
        colds, last = [], {}
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as data:
                last = run(base_env(data), args.requests if i == args.runs - 1 else 0)
            colds.append(last["cold_ms"])
        billed = f"{last['billed_ms']:.2f}" if "billed_ms" in last else "-"
        print(f"{name:28} {statistics.median(colds):>14.1f} {min(colds):>6.1f}..{max(colds):<7.1f} "
              f"{last.get('cpu_us', 0):>11.1f} {last.get('wall_us', 0):>12.1f} {billed:>10} "
              f"{last.get('rss_mib', 0):>8.1f}", flush=True)


def create_table(endpoint, table):
    """A DynamoDB Local table shaped like the deployments' (CandidateName hash key)."""
    body = json.dumps({
        "TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "CandidateName", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "CandidateName", "KeyType": "HASH"}],
    })
    host = endpoint.split("//", 1)[-1].rstrip("/")
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("POST", "/", body, {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.CreateTable",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0",
    })
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"CreateTable: {response.status} {response.read()[:200]!r}")


if __name__ == "__main__":
    main()
