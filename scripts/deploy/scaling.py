#!/usr/bin/env python3
"""The scale demo's arithmetic, shared by scripts/{aws,azure,gcp}/calibrate.sh and scale-demo.sh
(docs/scaling.md). No cloud calls: it turns what the calibration measured into the per-instance
target, and a target into the demo's load and the instance counts it must produce.

    scaling.py calibrate OUTPUT_FILE [--cpu-target 0.6] [--store cosmos] [--max-instances 4]
                         [--max-demo-rate 3000]
        OUTPUT_FILE holds what scripts/deploy/calibrate-instance.sh printed on one instance.
        Prints JSON: the measured figures and target_requests_per_instance_per_second.
    scaling.py plan --target T --min N --max M [--store firestore|cosmos|dynamodb]
        Prints JSON: the demo's rate, ramp and duration, and the expected instance counts.

Signals (docs/scaling.md): AWS target tracking on ALBRequestCountPerTarget (per minute: target x
60), GCP's autoscaler on the REST backend's RATE utilisation (max_rate_per_instance = target /
lb_utilization_target), Azure autoscale on the Application Gateway's AvgRequestCountPerHealthyHost
(per minute). All three hold an instance at `target` requests per second, so a steady load of R
req/s settles at ceil(R / target) instances, within [min, max].
"""
import argparse
import json
import math
import sys

# The demo's operation mix (candidatectl load --mix): /gtg touches no store; get and put do.
MIX = {"gtg": 1, "get": 8, "put": 1}
# Firestore's ramp rule ("500/50/5"): start at most 500 operations per second on a new collection
# (or lexicographically close documents), then grow by at most 50 % every 5 minutes.
FIRESTORE_START_OPS = 500
FIRESTORE_STEP_S = 300
FIRESTORE_GROWTH = 1.5
# Cosmos DB serverless: at most 5,000 RU/s per container (below 50 GB). A point read of a 1 KB item
# costs 1 RU; an upsert of a small item with the default (all paths) indexing costs a few RU: 10 is
# a deliberate overestimate. The demo keeps its estimate under 80 % of the cap.
COSMOS_SERVERLESS_RU_S = 5000
COSMOS_RU = {"get": 1, "put": 10}
COSMOS_HEADROOM = 0.8
DEFAULT_RAMP_S = 300
# What one operator machine's candidatectl drives through a load balancer without becoming the
# bottleneck (the original demo's rate); the calibrated target is capped so the demo stays under it.
DEFAULT_MAX_DEMO_RATE = 3000
# Long enough at full rate for every cloud's scale-out (AWS: 3 one-minute datapoints plus warm-up;
# Azure: 5-minute window plus a 5-minute cooldown per step; GCP: about a minute per decision).
HOLD_S = 900


def store_ops_per_request(mix=MIX):
    total = sum(mix.values())
    return (mix.get("get", 0) + mix.get("put", 0) + mix.get("list", 0)) / total


def cosmos_ru_per_request(mix=MIX):
    total = sum(mix.values())
    return sum(COSMOS_RU.get(op, 0) * weight for op, weight in mix.items()) / total


def parse_calibration(text):
    """The `calibration:` line and the load report JSON that calibrate-instance.sh prints."""
    fields, report = None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("calibration:"):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        elif line.startswith("{"):
            report = json.loads(line)
    if fields is None or report is None:
        raise ValueError("no calibration line or no load report in the output")
    return fields, report


def calibrate(fields, report, cpu_target=0.6, store=None, max_instances=4, max_demo_rate=DEFAULT_MAX_DEMO_RATE):
    """Per-instance target from one instance's measurement: the request rate at which the service
    alone would use cpu_target of the instance's cores, at the CPU cost per request measured (the
    load generator's own CPU is not counted). Capped so that the demo's load (target x
    (max - 0.5)) stays within what one machine running candidatectl drives (max_demo_rate; 0 for
    no cap, the production setting) and within the store's limit where one is hard (Cosmos DB
    serverless). `bound` says which of the three set it."""
    ok = int(report["ok"])
    elapsed = float(report["elapsed_s"])
    errors = int(report["sent"]) - ok
    if ok <= 0 or elapsed <= 0:
        raise ValueError("the calibration load completed no request")
    cpu_s = int(fields["cpu_ticks"]) / int(fields["hz"])
    cores = int(fields["cores"])
    if cpu_s <= 0:
        raise ValueError("the server used no CPU during the calibration")
    cpu_per_request = cpu_s / ok
    capacity = cores * cpu_target / cpu_per_request
    target = math.floor(capacity + 1e-6)  # not 119999 for 120000 through float rounding
    bound = "cpu"
    if max_demo_rate > 0:
        cap = math.floor(max_demo_rate / (max_instances - 0.5))
        if cap < target:
            target, bound = cap, "demo-rate"
    if store == "cosmos":
        cap = math.floor(COSMOS_SERVERLESS_RU_S * COSMOS_HEADROOM / cosmos_ru_per_request() / (max_instances - 0.5))
        if cap < target:
            target, bound = cap, "cosmos-serverless"
    return {
        "requests_ok": ok,
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "measured_rps": round(ok / elapsed, 1),
        "server_cpu_s": round(cpu_s, 3),
        "server_cpu_utilisation": round(cpu_s / elapsed / cores, 3),
        "cores": cores,
        "cpu_ms_per_request": round(cpu_per_request * 1e3, 4),
        "cpu_target": cpu_target,
        "capacity_rps_at_cpu_target": round(capacity, 1),
        "bound": bound,
        "max_demo_rate": max_demo_rate,
        "target_requests_per_instance_per_second": max(1, target),
    }


def firestore_ramp_s(store_ops, step_s=30):
    """The shortest linear ramp from 0 to store_ops operations per second (then held) that stays
    within the 500/50/5 rule: at every moment the rate is at most 500 x 1.5^k in the k-th five
    minutes. Checked just before each step, where a linear ramp is closest to the limit."""

    def within(ramp):
        if ramp == 0:
            return store_ops <= FIRESTORE_START_OPS
        k = 0
        while k * FIRESTORE_STEP_S < ramp:
            # Just before the k-th step up (or at the ramp's end), still under the k-th limit; after
            # the ramp the rate holds while the limit only grows.
            end = min((k + 1) * FIRESTORE_STEP_S, ramp)
            if store_ops * end / ramp > FIRESTORE_START_OPS * FIRESTORE_GROWTH**k + 1e-9:
                return False
            k += 1
        return True

    ramp = 0
    while not within(ramp):
        ramp += step_s
    return ramp


def plan(target, min_instances, max_instances, store=None, mix=MIX):
    """The demo's load and what it must do: a rate that puts min instances above the target and
    settles just below max (ceil(rate / target) = max), ramped within the store's rules."""
    if not 1 <= min_instances < max_instances:
        raise ValueError("need 1 <= min < max for a scale-out to show")
    rate = math.ceil(target * (max_instances - 0.5))
    peak = min(max_instances, max(min_instances, math.ceil(rate / target)))
    per_instance_at_min = rate / min_instances
    ops = rate * store_ops_per_request(mix)
    ramp = DEFAULT_RAMP_S
    notes = []
    if store == "firestore":
        ramp = max(ramp, firestore_ramp_s(ops))
        notes.append(f"Firestore 500/50/5: {ops:.0f} store ops/s reached by a {ramp} s linear ramp")
    if store == "cosmos":
        ru = rate * cosmos_ru_per_request(mix)
        if ru > COSMOS_SERVERLESS_RU_S * COSMOS_HEADROOM:
            raise ValueError(
                f"the demo would need ~{ru:.0f} RU/s, over 80 % of Cosmos DB serverless's {COSMOS_SERVERLESS_RU_S} "
                "RU/s per container: lower target_requests_per_instance_per_second or set cosmos_serverless = false"
            )
        notes.append(f"Cosmos DB: ~{ru:.0f} RU/s estimated, cap {COSMOS_SERVERLESS_RU_S} RU/s")
    return {
        "target_requests_per_instance_per_second": target,
        "rate": rate,
        "mix": ",".join(f"{k}={v}" for k, v in mix.items()),
        "ramp_s": ramp,
        "duration_s": ramp + HOLD_S,
        "per_instance_rps_at_min": round(per_instance_at_min, 1),
        "crosses_threshold": per_instance_at_min > target,
        "expected_min": min_instances,
        "expected_peak": peak,
        "expected_after": min_instances,
        "store_ops_per_s": round(ops, 1),
        "notes": notes,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate")
    cal.add_argument("output_file")
    cal.add_argument("--cpu-target", type=float, default=0.6)
    cal.add_argument("--store", choices=["dynamodb", "firestore", "cosmos", "none"])
    cal.add_argument("--max-instances", type=int, default=4)
    cal.add_argument("--max-demo-rate", type=int, default=DEFAULT_MAX_DEMO_RATE,
                     help="cap the target so the demo's load stays under this many req/s (0: no cap)")
    pl = sub.add_parser("plan")
    pl.add_argument("--target", type=int, required=True)
    pl.add_argument("--min", type=int, required=True)
    pl.add_argument("--max", type=int, required=True)
    pl.add_argument("--store", choices=["dynamodb", "firestore", "cosmos", "none"])
    args = parser.parse_args(argv)
    try:
        if args.command == "calibrate":
            fields, report = parse_calibration(open(args.output_file).read())
            result = calibrate(fields, report, args.cpu_target, args.store, args.max_instances, args.max_demo_rate)
        else:
            result = plan(args.target, args.min, args.max, args.store)
    except ValueError as e:
        print(f"scaling.py: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
