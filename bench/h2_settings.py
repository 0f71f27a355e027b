#!/usr/bin/env python3
"""Issue 29: does an HTTP/2 setting or the executor move the gRPC floor? One command, one run.

Runs bare tonic (server/examples/grpc_floor.rs) once per variant below, each pinned to CPU 1 with
h2load on CPU 0, and the Go peer (grpc-go) beside them when ../shared/peers is there; every
variant gets the same load, interleaved, order reversed on even reps; prints medians and each
variant's ratio to tonic's defaults and to the Go peer. Two load shapes: the side-by-side table's
`h2load -c16 -m16` (many streams per connection) and `-c64 -m1` (one stream per connection).

Variants (environment variables read by grpc_floor):
- defaults: tonic 0.14 / hyper 1.x / h2 0.4 as shipped, on the server's scheduler (current-thread
  when pinned to one core: server/src/runtime.rs);
- multi_thread: the multi-thread scheduler with one worker (what the server ran before);
- adaptive_window: BDP-estimated flow-control windows (grpc-go's default);
- big_windows: 4 MiB stream and 8 MiB connection windows, no window update for small calls;
- max_frame_16m: the largest frame the peer may send (16 MiB; tonic's default is h2's 16 KiB);
- streams_1000: max_concurrent_streams 1000 (h2load -m16 never reaches the default, a check).

    cargo build --release --locked -p candidates-server --example grpc_floor
    python3 bench/h2_settings.py [--duration 5] [--reps 3] [--no-build] [--variants defaults,multi_thread]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import side_by_side as sbs  # noqa: E402

VARIANTS = {
    "defaults": {},
    "multi_thread": {"FLOOR_RUNTIME": "multi_thread"},
    "adaptive_window": {"FLOOR_ADAPTIVE_WINDOW": "1"},
    "big_windows": {"FLOOR_STREAM_WINDOW": str(4 << 20), "FLOOR_CONNECTION_WINDOW": str(8 << 20)},
    "max_frame_16m": {"FLOOR_MAX_FRAME_SIZE": str((1 << 24) - 1)},
    "streams_1000": {"FLOOR_MAX_CONCURRENT_STREAMS": "1000"},
}
SHAPES = {"c16m16": ["-c16", "-m16"], "c64m1": ["-c64", "-m1"]}


def h2load(port, requests, body, shape):
    out = subprocess.run(["taskset", "-c", sbs.LOAD_CPU, "h2load", "-n", str(requests), *SHAPES[shape], "-d", body,
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}/candidates.v1.CandidateService/GetCandidate"],
                         capture_output=True, text=True, timeout=600).stdout
    if f"{requests} succeeded, 0 failed" not in out:
        raise SystemExit(f"h2load on {port}: failures\n{out}")
    import re
    return float(re.search(r"finished in [^,]*, ([\d.]+) req/s", out).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=5, help="approximate seconds per measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not 1 <= a.duration <= 60 or not 1 <= a.reps <= 15:
        raise SystemExit("--duration 1..60 and --reps 1..15")
    names = [v for v in a.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if "defaults" not in names:
        names.insert(0, "defaults")  # every ratio is to it
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "candidates-server", "--example",
                        "grpc_floor"], cwd=sbs.ROOT, check=True)
    go = os.access(sbs.PEER_BIN, os.X_OK)
    if not go:
        print(f"no Go peer at {sbs.PEER_BIN} (bench/side_by_side.py builds it): its column is left out",
              file=sys.stderr)
    results = {shape: {} for shape in SHAPES}
    with tempfile.TemporaryDirectory() as tmp:
        body = os.path.join(tmp, "get-bench.grpc")
        with open(body, "wb") as f:
            f.write(sbs.GET_BENCH)
        running = []
        try:
            for name in names:
                port = sbs.free_port()
                env = dict(os.environ, **VARIANTS[name])
                s = sbs.System(name, [os.path.join(sbs.REL, "examples", "grpc_floor"), f"127.0.0.1:{port}"],
                               grpc=port, env=env)
                running.append(s)
            if go:
                s = sbs.start("go-peer", tmp)
                running.append(s)
            n = a.duration * 50_000
            for rep in range(a.reps):
                order = running if rep % 2 == 0 else list(reversed(running))
                for shape in SHAPES:
                    for s in order:
                        rate = h2load(s.grpc, n, body, shape)
                        results[shape].setdefault(s.name, []).append(rate)
                        print(f"rep {rep + 1} {shape:7} {s.name:16} {rate:>10.0f} req/s", file=sys.stderr, flush=True)
        finally:
            for s in running:
                s.stop()
    print(f"\nbare tonic (grpc_floor) per setting, GetCandidate req/s, medians of {a.reps}:")
    print("| variant | " + " | ".join(f"h2load {' '.join(v)}" for v in SHAPES.values()) + " |")
    print("|---|" + "---:|" * len(SHAPES))
    med = {shape: {n: statistics.median(v) for n, v in r.items()} for shape, r in results.items()}
    for s in running:
        cells = []
        for shape in SHAPES:
            m = med[shape][s.name]
            cell = f"{m:,.0f} ({m / med[shape]['defaults']:.2f}x"
            cell += f", {m / med[shape]['go-peer']:.2f}x Go)" if go else ")"
            cells.append(cell)
        print(f"| {s.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
