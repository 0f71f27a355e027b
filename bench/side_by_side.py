#!/usr/bin/env python3
"""Issue 29's table in one command: our server against its floors and its peers, same run, same
protocol, medians.

Systems (each pinned to CPU 1, the load generator to CPU 0, loopback only):
- nginx `return 200` (one worker, keepalive_requests 1,000,000 so wrk never reconnects: no
  reconnect handicap), the machine's ceiling for a response that does no work;
- hyper-floor: hyper's own server answering /gtg and /candidate/{name} (server/examples/http_floor.rs);
- tonic-floor: tonic's own server answering GetCandidate with a fixed candidate
  (server/examples/grpc_floor.rs);
- ours: candidate-server, --store memory, default logging (one access line per request);
- go-peer and go-peer-inprocess: the Go grpc-gateway peer from ../shared/peers (built there by its
  build.sh when missing; left out when ../shared/peers is not there).

Rows: GET /gtg and GET /candidate/bench (wrk -t1 -c64), gRPC GetCandidate (h2load -c16 -m16);
idle RSS and RSS after the runs. Each figure is the median of --reps interleaved runs (the order
reversed on even reps). Then ratios: ours against its floor and against the Go peer.

    cargo build --release --locked -p candidates-server --bin candidate-server --example http_floor --example grpc_floor
    python3 bench/side_by_side.py [--duration 8] [--reps 3] [--no-build] [--systems ...]
    python3 bench/side_by_side.py --no-build --systems ours,ours@/tmp/before/candidate-server   (A/B)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port, rss_kib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")
PEER_BIN = os.path.expanduser(os.environ.get("PEER_BIN", "~/.cache/candidates-peer/bin/candidates-peer"))
SERVER_CPU, LOAD_CPU = "1", "0"
GET_BENCH = b"\x00\x00\x00\x00\x07\x0a\x05bench"  # GetCandidateRequest{name: "bench"}
ALL = ["nginx", "hyper-floor", "tonic-floor", "ours", "go-peer", "go-peer-inprocess"]


def wait_http(url, deadline=15.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "1", "-f", url]).returncode == 0:
            return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {deadline} s")


def wait_port(port, deadline=15.0):
    import socket
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} not open within {deadline} s")


class System:
    def __init__(self, name, command, http=None, grpc=None, env=None):
        self.name, self.http, self.grpc = name, http, grpc
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + command, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if http:
            wait_http(f"http://127.0.0.1:{http}/gtg")
        if grpc:
            wait_port(grpc)
        self.rss_idle = None

    def rss(self):
        total = rss_kib(self.proc.pid) or 0
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                total += sum(rss_kib(int(c)) or 0 for c in f.read().split())
        except OSError:
            pass
        return total / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start(name, tmp):
    http, grpc = free_port(), free_port()
    if name == "nginx":
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log /dev/null;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{http};
    location / {{ return 200; }}
    location /candidate/ {{ default_type application/json; return 200 '{{"CandidateName":"bench"}}'; }} }}
  server {{ listen 127.0.0.1:{grpc} http2; location / {{ return 200; }} }}
}}
""")
        return System(name, [shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf, "-p", tmp], http, grpc)
    if name == "hyper-floor":
        return System(name, [os.path.join(REL, "examples", "http_floor"), f"127.0.0.1:{http}"], http=http)
    if name == "tonic-floor":
        return System(name, [os.path.join(REL, "examples", "grpc_floor"), f"127.0.0.1:{grpc}"], grpc=grpc)
    if name == "ours" or name.startswith("ours@"):
        # `ours@PATH`: another build of the server beside this one (a change's before and after).
        binary = name.partition("@")[2] or os.path.join(REL, "candidate-server")
        data = tempfile.mkdtemp(dir=tmp)
        env = dict(os.environ, CANDIDATES_STORE="memory", CANDIDATES_DATA_DIR=data, CANDIDATES_DRAIN_PERIOD="0s",
                   CANDIDATES_HTTP_ADDR=f"127.0.0.1:{http}", CANDIDATES_GRPC_ADDR=f"127.0.0.1:{grpc}")
        env.pop("CANDIDATES_LOG", None)
        return System(name, [binary], http, grpc, env)
    if name in ("go-peer", "go-peer-inprocess"):
        env = dict(os.environ, GOMAXPROCS="1", PEER_INPROCESS="1" if name.endswith("inprocess") else "0")
        return System(name, [PEER_BIN, "-http-addr", f"127.0.0.1:{http}", "-grpc-addr", f"127.0.0.1:{grpc}"],
                      http, grpc, env)
    raise SystemExit(f"unknown system {name}")


def wrk(url, duration):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c64", f"-d{duration}s", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url}: non-2xx answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def h2load(port, requests, body):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-n", str(requests), "-c16", "-m16", "-d", body,
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}/candidates.v1.CandidateService/GetCandidate"],
                         capture_output=True, text=True, timeout=600).stdout
    if f"{requests} succeeded, 0 failed" not in out:
        raise SystemExit(f"h2load on {port}: failures\n{out}")
    return float(re.search(r"finished in [^,]*, ([\d.]+) req/s", out).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--systems", default=",".join(ALL))
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not 1 <= a.duration <= 120 or not 1 <= a.reps <= 15:
        raise SystemExit("--duration 1..120 and --reps 1..15")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs")
    for tool in ("wrk", "h2load", "taskset", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool} (apt-get install wrk nghttp2-client util-linux curl)")
    systems = [s for s in a.systems.split(",") if s]
    if any(s.startswith("go-peer") for s in systems) and not os.access(PEER_BIN, os.X_OK):
        build = os.path.join(PEERS, "go-grpc-gateway", "build.sh")
        if os.path.exists(build):
            subprocess.run([build], check=True)
        else:
            print(f"no Go peer ({PEERS} absent): its rows are left out", file=sys.stderr)
            systems = [s for s in systems if not s.startswith("go-peer")]
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "candidates-server", "--bin",
                        "candidate-server", "--example", "http_floor", "--example", "grpc_floor"], cwd=ROOT, check=True)

    rows = {"gtg": {}, "get": {}, "grpc": {}}
    with tempfile.TemporaryDirectory() as tmp:
        body = os.path.join(tmp, "get-bench.grpc")
        with open(body, "wb") as f:
            f.write(GET_BENCH)
        running = []
        try:
            for name in systems:
                running.append(start(name, tmp))
            for s in running:
                if s.name.startswith("ours") or s.name.startswith("go-peer"):
                    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "POST",
                                    f"http://127.0.0.1:{s.http}/candidate/bench"], check=True)
                time.sleep(0.5)
                s.rss_idle = s.rss()
            grpc_n = a.duration * 50_000
            for rep in range(a.reps):
                order = running if rep % 2 == 0 else list(reversed(running))
                for test in ("gtg", "get", "grpc"):
                    for s in order:
                        port = s.grpc if test == "grpc" else s.http
                        if not port:
                            continue
                        if test == "grpc":
                            rate = h2load(port, grpc_n, body)
                        else:
                            path = "/gtg" if test == "gtg" else "/candidate/bench"
                            rate = wrk(f"http://127.0.0.1:{port}{path}", a.duration)
                        rows[test].setdefault(s.name, []).append(rate)
                        print(f"rep {rep + 1} {test:5} {s.name:18} {rate:>10.0f} req/s", file=sys.stderr, flush=True)
            after = {s.name: s.rss() for s in running}
        finally:
            for s in running:
                s.stop()

    names = [s.name for s in running]
    med = {t: {n: statistics.median(v) for n, v in r.items()} for t, r in rows.items()}
    labels = {"gtg": "GET /gtg (wrk -c64)", "get": "GET /candidate/bench (wrk -c64)",
              "grpc": "gRPC GetCandidate (h2load -c16 -m16)"}
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, medians of {a.reps} x {a.duration} s, req/s")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for t in ("gtg", "get", "grpc"):
        cells = [f"{med[t][n]:,.0f}" if n in med[t] else "—" for n in names]
        if t == "grpc" and "nginx" in med[t]:
            cells[names.index("nginx")] += " (h2 headers only)"
        print(f"| {labels[t]} | " + " | ".join(cells) + " |")
    rss = {s.name: (s.rss_idle, after[s.name]) for s in running}
    print("| RSS idle / after, MiB | " + " | ".join(f"{rss[n][0]:.0f} / {rss[n][1]:.0f}" for n in names) + " |")

    def ratio(t, a_, b):
        if a_ in med[t] and b in med[t]:
            return f"{med[t][a_] / med[t][b]:.2f}x"
        return "—"
    print("\nours against:")
    print(f"- its floors: /gtg {ratio('gtg', 'ours', 'hyper-floor')} and GET {ratio('get', 'ours', 'hyper-floor')} "
          f"of bare hyper; gRPC {ratio('grpc', 'ours', 'tonic-floor')} of bare tonic")
    print(f"- the Go peer: /gtg {ratio('gtg', 'ours', 'go-peer')}, GET {ratio('get', 'ours', 'go-peer')}, "
          f"gRPC {ratio('grpc', 'ours', 'go-peer')}; GET {ratio('get', 'ours', 'go-peer-inprocess')} of its "
          f"in-process gateway")
    print(f"- the floors against the Go peer: bare tonic {ratio('grpc', 'tonic-floor', 'go-peer')} on gRPC, "
          f"bare hyper {ratio('gtg', 'hyper-floor', 'go-peer')} on /gtg")
    if "ours" in rss:
        print(f"- RSS after load {rss['ours'][1] / rss['ours'][0]:.2f}x idle")
    for other in (n for n in names if n.startswith("ours@")):
        print(f"- {other}: /gtg {ratio('gtg', 'ours', other)}, GET {ratio('get', 'ours', other)}, "
              f"gRPC {ratio('grpc', 'ours', other)} (this build over that one)")


if __name__ == "__main__":
    main()
