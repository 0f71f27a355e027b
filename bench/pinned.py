#!/usr/bin/env python3
"""The pinned protocol: the server on one core, the load generator on the other, nginx `return 200`
(one worker, pinned the same way) as the machine's ceiling, all in one run, so that the ratios
compare like with like on a shared, noisy machine. Prints a table of medians and ratios.

    server, nginx:  taskset -c 1     load:  taskset -c 0 wrk -t1 -c64 (gRPC: candidatectl load -c 64)

Rows: GET /gtg and GET /candidate/{name} (embedded store) with the default log level and with
--log warn, gRPC GetCandidate (h2load, and candidatectl: a tonic client as heavy as the server), and
GetCandidate on tonic's own server with a fixed answer (server/examples/grpc_floor.rs: what hyper,
h2 and tonic cost with none of ours), each the median of --reps runs of --duration, the targets
alternating within each rep. Then memory: idle RSS, peak RSS during --soak seconds at 256
connections, and RSS every 5 s for 30 s after the load stops.

Last, the same memory figures around a store stall: the server on DynamoDB (a private moto_server),
the emulator SIGSTOPped while 1,000 connections ask for --stall seconds, then resumed.

    python3 bench/pinned.py [--duration 10] [--reps 3] [--soak 60] [--stall 20] [--no-stall]
                            [--no-build] [--json FILE]

Needs wrk, nginx, h2load (nghttp2-client) and taskset (installed with apt-get when missing) and two CPUs.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port, rss_kib  # noqa: E402
from soak import wait_ready  # noqa: E402
from run import RssSampler  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(REL, "candidate-server")
CTL = os.path.join(REL, "candidatectl")
FLOOR = os.path.join(REL, "examples", "grpc_floor")
SERVER_CPU, LOAD_CPU = "1", "0"


def need(tool, package):
    if shutil.which(tool) is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL)


def wrk(url, duration, connections=64):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", url],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
    raise SystemExit(f"wrk printed no rate:\n{out}")


def grpc_load(port, duration):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, CTL, "--target", f"http://127.0.0.1:{port}", "--json", "load",
                          "--quiet", "-c", "64", "-d", f"{duration}s", "--mix", "get=1", "--keys", "1"],
                         capture_output=True, text=True).stdout
    try:
        # The report is the last JSON document printed (pretty-printed, so from the last "{" at
        # the start of a line).
        return float(json.loads(out[out.rindex("\n{") + 1:] if "\n{" in out else out)["throughput_rps"])
    except (ValueError, KeyError):
        raise SystemExit(f"candidatectl printed no throughput:\n{out}")


# A gRPC GetCandidate request as h2load sends it: one uncompressed length-prefixed message,
# GetCandidateRequest{name: "bench"} (field 1, length 5).
GET_BENCH_FRAME = bytes([0, 0, 0, 0, 7, 0x0A, 5]) + b"bench"


def h2load_grpc(port, duration, tmp, connections=64):
    """gRPC GetCandidate with h2load (one stream at a time per connection, like wrk's requests):
    the load generator costs as little as wrk does, so this row compares the protocols rather than
    the clients. Counts a reply only if it is 200 (the gRPC status is in trailers h2load does not
    read; the server's log of such a run shows grpc_status=0)."""
    body = os.path.join(tmp, "get-bench.grpc")
    with open(body, "wb") as f:
        f.write(GET_BENCH_FRAME)
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-c", str(connections), "-m", "1", "-D", str(duration),
                          "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}/candidates.v1.CandidateService/GetCandidate"],
                         capture_output=True, text=True).stdout
    rate = status = None
    for line in out.splitlines():
        if line.startswith("finished in"):
            rate = float(line.split(",")[1].split()[0])
        if line.startswith("status codes:"):
            status = line
    if rate is None or status is None or "0 4xx, 0 5xx" not in status:
        raise SystemExit(f"h2load failed:\n{out}")
    return rate


class Nginx:
    def __init__(self, port, tmp):
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log /dev/null;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }} }}
""")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, "nginx", "-c", conf, "-p", tmp],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Server:
    def __init__(self, tmp, log, store_args=()):
        self.http, self.grpc = free_port(), free_port()
        data = tempfile.mkdtemp(dir=tmp)
        self.logfile = open(os.path.join(tmp, f"server-{log}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, SERVER, "--http-addr", f"127.0.0.1:{self.http}",
             "--grpc-addr", f"127.0.0.1:{self.grpc}", "--data-dir", data, "--log", log, "--drain-period", "0s",
             *store_args],
            stdout=self.logfile, stderr=subprocess.STDOUT)
        wait_ready(self.http)
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-X", "POST", f"http://127.0.0.1:{self.http}/candidate/bench"],
                       check=True)
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-X", "POST",
                        f"http://127.0.0.1:{self.http}/candidate/load-000000"], check=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.logfile.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--soak", type=int, default=60)
    ap.add_argument("--stall", type=int, default=20, help="seconds the store is stalled under load")
    ap.add_argument("--no-stall", action="store_true", help="skip the store-stall memory run (needs moto)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        raise SystemExit("the pinned protocol needs two CPUs")
    need("wrk", "wrk")
    need("nginx", "nginx")
    need("h2load", "nghttp2-client")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "candidate-server", "--bin", "candidatectl",
                        "--example", "grpc_floor"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="pinned-")
    nginx_port = free_port()
    nginx = Nginx(nginx_port, tmp)
    wait_ready_plain(nginx_port)
    info = Server(tmp, "info")
    warn = Server(tmp, "warn")
    floor_port = free_port()
    floor = subprocess.Popen(["taskset", "-c", SERVER_CPU, FLOOR, f"127.0.0.1:{floor_port}"])
    wait_ready_plain(floor_port)
    runs = {k: [] for k in ("nginx", "gtg info", "get info", "gtg warn", "get warn", "grpc get info",
                            "grpc get (candidatectl)", "grpc floor (bare tonic)")}
    try:
        for rep in range(args.reps):
            targets = [
                ("nginx", lambda: wrk(f"http://127.0.0.1:{nginx_port}/", args.duration)),
                ("gtg info", lambda: wrk(f"http://127.0.0.1:{info.http}/gtg", args.duration)),
                ("get info", lambda: wrk(f"http://127.0.0.1:{info.http}/candidate/bench", args.duration)),
                ("gtg warn", lambda: wrk(f"http://127.0.0.1:{warn.http}/gtg", args.duration)),
                ("get warn", lambda: wrk(f"http://127.0.0.1:{warn.http}/candidate/bench", args.duration)),
                ("grpc get info", lambda: h2load_grpc(info.grpc, args.duration, tmp)),
                ("grpc get (candidatectl)", lambda: grpc_load(info.grpc, args.duration)),
                ("grpc floor (bare tonic)", lambda: h2load_grpc(floor_port, args.duration, tmp)),
            ]
            if rep % 2:
                targets.reverse()
            for name, run in targets:
                runs[name].append(run())
                print(f"rep {rep + 1}: {name:<24} {runs[name][-1]:>9.0f} req/s", flush=True)
        med = {k: statistics.median(v) for k, v in runs.items()}
        print()
        print(f"| {'(medians of ' + str(args.reps) + ', req/s)':<26} | {'req/s':>9} | {'vs nginx':>8} |")
        print(f"|{'-' * 28}|{'-' * 11}|{'-' * 10}|")
        for name in runs:
            print(f"| {name:<26} | {med[name]:>9.0f} | {med[name] / med['nginx']:>7.2f}x |")
        print(f"| {'gRPC get / REST get':<26} | {'':>9} | {med['grpc get info'] / med['get info']:>7.2f}x |")
        print(f"| {'bare tonic / REST get':<26} | {'':>9} | {med['grpc floor (bare tonic)'] / med['get info']:>7.2f}x |")
        print(f"| {'gRPC get / bare tonic':<26} | {'':>9} | {med['grpc get info'] / med['grpc floor (bare tonic)']:>7.2f}x |")
        print(f"| {'log line cost on /gtg':<26} | {'':>9} | {1 - med['gtg info'] / med['gtg warn']:>7.1%} |")
        info.stop()
        warn.stop()
        memory = soak_memory(tmp, args.soak)
        if not args.no_stall:
            memory["store_stall"] = stall_memory(tmp, args.stall)
        print(json.dumps(memory, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"runs": runs, "medians": med, "memory": memory}, f, indent=2)
    finally:
        for p in (nginx,):
            p.stop()
        floor.terminate()
        floor.wait()
        for s in (info, warn):
            if s.proc.poll() is None:
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def wait_ready_plain(port, timeout=10):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def soak_memory(tmp, seconds):
    """Idle RSS, peak RSS under `seconds` of GET load at 256 connections, and RSS after it."""
    server = Server(tmp, "info")
    try:
        figures, _ = memory_around(server, lambda: subprocess.run(
            ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c256", f"-d{seconds}s",
             f"http://127.0.0.1:{server.http}/candidate/bench"], capture_output=True, check=True))
        return figures
    finally:
        server.stop()


def memory_around(server, load):
    """The server's idle RSS, its peak while `load()` runs and its RSS every 5 s for 30 s after, in
    MiB, and what `load()` returned."""
    time.sleep(1)
    idle = rss_kib(server.proc.pid) / 1024
    with RssSampler(server.proc.pid) as peak:
        result = load()
    after = rss_after(server.proc.pid)
    figures = {"idle_rss_mib": round(idle, 1), "peak_rss_mib": round(max(peak.max / 1024, idle), 1),
               "rss_after_load_every_5s_mib": after, "after_30s_vs_idle": round(after[-1] / idle, 2)}
    return figures, result


def rss_after(pid):
    """RSS every 5 s for 30 s."""
    after = []
    for _ in range(6):
        time.sleep(5)
        after.append(round(rss_kib(pid) / 1024, 1))
    return after


def stall_memory(tmp, seconds):
    """The store stalls under load: a private moto_server (DynamoDB) is SIGSTOPped while wrk keeps
    1,000 connections asking for a candidate for `seconds`; then it is resumed. Idle RSS, peak RSS,
    and RSS every 5 s for 30 s after the load. Needs moto_server (scripts/emulators.sh installs it)."""
    if shutil.which("moto_server") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "moto[server]>=5,<6"], check=True)
    import signal
    port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1")
    server = None
    try:
        wait_ready_plain(port, 30)
        subprocess.run([sys.executable, "-c", f"""
import boto3
boto3.client("dynamodb", endpoint_url="http://127.0.0.1:{port}", region_name="us-east-1",
             aws_access_key_id="bench", aws_secret_access_key="bench").create_table(
    TableName="Candidates", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{{"AttributeName": "CandidateName", "AttributeType": "S"}}],
    KeySchema=[{{"AttributeName": "CandidateName", "KeyType": "HASH"}}])
"""], check=True, env=env)
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                                               "AWS_EC2_METADATA_DISABLED", "NO_PROXY")})
        server = Server(tmp, "info", ["--store", "dynamodb", "--dynamodb-endpoint", f"http://127.0.0.1:{port}"])

        def stalled_load():
            os.kill(moto.pid, signal.SIGSTOP)
            try:
                out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c1000", f"-d{seconds}s",
                                      "--timeout", "5s", f"http://127.0.0.1:{server.http}/candidate/bench"],
                                     capture_output=True, text=True).stdout
            finally:
                os.kill(moto.pid, signal.SIGCONT)
            rate = next((l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")), "?")
            non2xx = next((l.split()[-1] for l in out.splitlines() if "Non-2xx" in l), "0")
            return {"answers_per_s_while_stalled": rate, "non_2xx": non2xx}

        figures, answers = memory_around(server, stalled_load)
        return {**figures, **answers}
    finally:
        if server is not None:
            server.stop()
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
