#!/usr/bin/env python3
"""The scale demo's arithmetic, shared by scripts/{aws,azure,gcp}/calibrate.sh and scale-demo.sh
(docs/scaling.md). No cloud calls: it turns what the calibration measured into the per-instance
target, and a target into the demo's load and the instance counts it must produce.

    scaling.py calibrate OUTPUT_FILE [--cpu-target 0.6] [--store cosmos] [--max-instances 4]
                         [--max-demo-rate 3000] [--instance-type t3.small] [--baseline 0.2]
        OUTPUT_FILE holds what scripts/deploy/calibrate-instance.sh printed on one instance.
        Prints JSON: the measured figures and target_requests_per_instance_per_second.
    scaling.py calibration-load --store S [--seconds 60]
        Prints JSON: the calibration's open-loop rate, ramp and populate size within the store's
        rules (Firestore 500/50/5, Cosmos DB serverless's RU/s).
    scaling.py plan --target T --min N --max M [--store firestore|cosmos|dynamodb]
                    [--cloud aws|azure|gcp] [--rate R] [--ramp 300s] [--duration 1200s] [--stress]
        Prints JSON: the demo's rate, ramp and duration, the expected instance counts, and by when
        (peak_by_s after the load starts, final_by_s after it stops) the cloud's policy reaches them.
    scaling.py verify PLAN_JSON SAMPLES_FILE LOAD_STOPPED_AT
        Checks the instance counts the demo sampled ("T RUNNING TARGET" per line, T in seconds
        from the load's start) against the plan; exit 1 with the reason when they fall short.

Signals (docs/scaling.md): AWS target tracking on ALBRequestCountPerTarget (per minute: target x
60), GCP's autoscaler on the REST backend's RATE utilisation (max_rate_per_instance = target /
lb_utilization_target), Azure autoscale on the Application Gateway's AvgRequestCountPerHealthyHost
(per minute). All three hold an instance at `target` requests per second, so a steady load of R
req/s settles at ceil(R / target) instances, within [min, max].
"""
import argparse
import json
import math
import re
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

# Burstable instance types: the share of all their vCPUs they sustain (the baseline); above it they
# spend CPU credits (and are throttled to it when the credits run out, or bill the surplus in T3
# "unlimited" mode, which is T3's default). The roots' defaults are t3.small, Standard_B2s and
# e2-small. Sources (docs/scaling.md, Calibration): AWS "Burstable performance instances" (baseline
# utilisation per vCPU); Azure "B-series burstable VM sizes" (base CPU performance of the VM,
# normalised to all its vCPUs); Compute Engine "Shared-core machine types" (fractional vCPUs of
# e2-micro/e2-small/e2-medium, which have 2 vCPUs each; f1-micro/g1-small have 1).
BURSTABLE_BASELINE = {
    # AWS T3, T3a and T4g share one table (per vCPU); T2 differs above medium.
    **{f"{family}.{size}": share for family in ("t3", "t3a", "t4g") for size, share in {
        "nano": 0.05, "micro": 0.10, "small": 0.20, "medium": 0.20, "large": 0.30,
        "xlarge": 0.40, "2xlarge": 0.40}.items()},
    "t2.nano": 0.05, "t2.micro": 0.10, "t2.small": 0.20, "t2.medium": 0.20, "t2.large": 0.30,
    "t2.xlarge": 0.225, "t2.2xlarge": 0.17,
    # Azure B-series (v1): base CPU performance of the VM / (100 % x vCPUs).
    "Standard_B1ls": 0.05, "Standard_B1s": 0.10, "Standard_B1ms": 0.20, "Standard_B2s": 0.20,
    "Standard_B2ms": 0.30, "Standard_B4ms": 0.225, "Standard_B8ms": 0.17, "Standard_B12ms": 0.17,
    "Standard_B16ms": 0.17, "Standard_B20ms": 0.17,
    # Compute Engine shared-core: fractional vCPU / vCPUs.
    "e2-micro": 0.125, "e2-small": 0.25, "e2-medium": 0.5, "f1-micro": 0.2, "g1-small": 0.5,
}
# Names that are burstable but not in the table: refuse to guess (pass --baseline).
BURSTABLE_PATTERNS = (r"^t[234][ag]?\.", r"^Standard_B\d", r"^(e2-(micro|small|medium)|f1-micro|g1-small)$")


def baseline_share(instance_type, override=None):
    """The share of the instance's vCPUs it sustains: 1.0 for fixed-performance types."""
    if override is not None:
        if not 0 < override <= 1:
            raise ValueError("--baseline must be in (0, 1]")
        return override
    if not instance_type:
        return 1.0
    if instance_type in BURSTABLE_BASELINE:
        return BURSTABLE_BASELINE[instance_type]
    if any(re.match(p, instance_type) for p in BURSTABLE_PATTERNS):
        raise ValueError(f"{instance_type} is burstable and its baseline is not in scaling.py's table: "
                         "pass its sustained share of all vCPUs (CAL_BASELINE, e.g. 0.2)")
    return 1.0


# The calibration's own load (calibrate-instance.sh), open loop and ramped so that it stays within
# the store's rules like the demo: Firestore at most 500 operations/s on a new collection (a 60 s
# run never reaches the first +50 % step), Cosmos DB serverless under 80 % of 5,000 RU/s; the
# populate pass writes at most what one second of the limit allows. DynamoDB on-demand and the
# embedded store have no rule a one-minute calibration can break; the rate there is what one
# instance's loopback load generator drives without becoming the bottleneck itself.
CAL_UNCAPPED_RATE = 20000
CAL_KEYS = 1000
CAL_RAMP_FRACTION = 0.25


def calibration_load(store=None, seconds=60, mix=MIX):
    ops_per_request = store_ops_per_request(mix)
    rate, keys, notes = CAL_UNCAPPED_RATE, CAL_KEYS, []
    if store == "firestore":
        rate = math.floor(FIRESTORE_START_OPS / ops_per_request)
        keys = min(keys, math.floor(FIRESTORE_START_OPS * 0.9))
        notes.append(f"Firestore 500/50/5: at most {FIRESTORE_START_OPS} store ops/s, populate {keys} names")
    elif store == "cosmos":
        budget = COSMOS_SERVERLESS_RU_S * COSMOS_HEADROOM
        rate = math.floor(budget / cosmos_ru_per_request(mix))
        keys = min(keys, math.floor(budget / COSMOS_RU["put"]))
        notes.append(f"Cosmos DB serverless: under {budget:.0f} RU/s, populate {keys} names")
    ramp = max(1, math.floor(seconds * CAL_RAMP_FRACTION))
    return {"rate": rate, "ramp_s": ramp, "seconds": seconds, "keys": keys, "store": store or "none",
            "notes": notes}


# What each cloud's policy needs to act, in seconds (docs/scaling.md, "How long"): the demo's peak
# must come within `peak_by_s` of the load's start and the minimum within `final_by_s` of its end.
#   decision_out: from the rate being over the target until the first scale-out is decided
#   step_out:     between two scale-out decisions (cooldown / warm-up, plus a decision)
#   decision_in:  from the load stopping until the first scale-in is decided
#   step_in:      between two scale-in decisions
#   provision:    a new instance launched, booted and healthy behind the load balancer (or, for
#                 scale-in, drained and gone)
# The values come from the roots (a test reads them back from terraform/*/): AWS target tracking
# (3 one-minute datapoints out, 15 in; instance_warmup_seconds 60), Azure autoscale (5-minute window
# and cooldown out, 10-minute window and cooldown in, one instance per action, 5-minute
# termination notice), GCP (cooldown_seconds 60, a 10-minute scale-in stabilisation and
# scale_in_control of 1 instance per 600 s; the per-group request_count metric is sampled every
# 60 s and visible up to 210 s later, hence 120 s more than the others each way). Each adds
# METRIC_DELAY_S for the metric pipeline.
METRIC_DELAY_S = 120
PROVISION_S = 300
POLICY = {
    "aws": {"decision_out": 180, "step_out": 60 + 180, "decision_in": 900, "step_in": 300},
    "azure": {"decision_out": 300, "step_out": 300 + 60, "decision_in": 600, "step_in": 600},
    "gcp": {"decision_out": 180 + 120, "step_out": 60 + 60, "decision_in": 600 + 120, "step_in": 600},
}


def policy_bounds(cloud, ramp_s, steps_out, steps_in):
    """(peak_by_s, final_by_s): the latest the peak may come after the load starts (at full rate
    after ramp_s) and the latest the count may be back at the minimum after the load stops."""
    p = POLICY[cloud]
    peak_by = (ramp_s + METRIC_DELAY_S + p["decision_out"] + max(0, steps_out - 1) * p["step_out"]
               + PROVISION_S)
    final_by = METRIC_DELAY_S + p["decision_in"] + max(0, steps_in - 1) * p["step_in"] + PROVISION_S
    return peak_by, final_by


def seconds_of(value):
    """'300s', '5m', '1h', '300' -> seconds (the subset of humantime the scripts pass)."""
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))


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


def calibrate(fields, report, cpu_target=0.6, store=None, max_instances=4, max_demo_rate=DEFAULT_MAX_DEMO_RATE,
              instance_type=None, baseline=None):
    """Per-instance target from one instance's measurement: the request rate at which the service
    alone would use cpu_target of the instance's cores, at the CPU cost per request measured (the
    load generator's own CPU is not counted). On a burstable type the sustainable share is its
    baseline, not cpu_target of every core: the target is then set at the baseline (bound
    `cpu-baseline`), or an instance held at the target would spend its credits and be throttled
    (or billed the surplus). Capped so that the demo's load (target x (max - 0.5)) stays within
    what one machine running candidatectl drives (max_demo_rate; 0 for no cap, the production
    setting) and within the store's limit where one is hard (Cosmos DB serverless). `bound` says
    which set it."""
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
    instance_type = instance_type or fields.get("instance_type") or None
    share = baseline_share(instance_type, baseline)
    usable = min(cpu_target, share)
    capacity = cores * usable / cpu_per_request
    target = math.floor(capacity + 1e-6)  # not 119999 for 120000 through float rounding
    bound = "cpu" if share >= cpu_target else "cpu-baseline"
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
        "instance_type": instance_type,
        "baseline_share": share,
        "usable_cpu_share": usable,
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


def plan(target, min_instances, max_instances, store=None, mix=MIX, cloud=None, rate=None, ramp_s=None,
         duration_s=None, stress=False):
    """The demo's load and what it must do: a rate that puts min instances above the target and
    settles just below max (ceil(rate / target) = max), ramped within the store's rules. With a
    cloud, also by when its policy must have reached the peak (peak_by_s, from the load's start)
    and the minimum again (final_by_s, from the load's end); the load lasts until the peak is due.
    rate/ramp_s/duration_s override the plan (RATE/RAMP/DURATION), and the expected peak follows
    the rate. stress: the CPU burn instead of a load (expected: at least one instance more)."""
    if not 1 <= min_instances < max_instances:
        raise ValueError("need 1 <= min < max for a scale-out to show")
    if cloud is not None and cloud not in POLICY:
        raise ValueError(f"unknown cloud {cloud!r}")
    planned_rate = math.ceil(target * (max_instances - 0.5))
    rate = planned_rate if rate is None else rate
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
    ramp = ramp if ramp_s is None else ramp_s
    if stress:
        # Every core of the first instances busy: the CPU policies add at least one instance.
        ramp, peak = 0, min_instances + 1
    duration = ramp + HOLD_S
    result = {
        "target_requests_per_instance_per_second": target,
        "rate": rate,
        "mix": ",".join(f"{k}={v}" for k, v in mix.items()),
        "ramp_s": ramp,
        "duration_s": duration,
        "per_instance_rps_at_min": round(per_instance_at_min, 1),
        "crosses_threshold": stress or per_instance_at_min > target,
        "expected_min": min_instances,
        "expected_peak": peak,
        "expected_after": min_instances,
        "store_ops_per_s": round(ops, 1),
        "stress": stress,
        "notes": notes,
    }
    if cloud is not None:
        peak_by, final_by = policy_bounds(cloud, ramp, peak - min_instances, peak - min_instances)
        # The load must last until the peak is due (plus a minute of it held), or a policy that is
        # slow but within its bounds would be cut off.
        duration = max(duration, peak_by + 60)
        result.update(cloud=cloud, peak_by_s=peak_by, final_by_s=final_by, duration_s=duration)
    if duration_s is not None:
        result["duration_s"] = duration_s
        if cloud is not None and duration_s < result["peak_by_s"]:
            notes.append(f"DURATION {duration_s}s ends before the peak is due ({result['peak_by_s']}s): "
                         "the peak is checked up to the end of the load")
            result["peak_by_s"] = duration_s
    return result


def verify(plan_result, samples, load_stopped_at):
    """Checks the sampled counts against a plan (with a cloud). samples: [(t, running, target)], t
    in seconds from the load's start, running None when the count failed. Returns (ok, lines)."""
    lo, peak, after = plan_result["expected_min"], plan_result["expected_peak"], plan_result["expected_after"]
    peak_by, final_by = plan_result["peak_by_s"], plan_result["final_by_s"]
    known = [(t, r, g) for t, r, g in samples if r is not None]
    lines, ok = [], True
    if not known:
        return False, ["no instance count was read (the count command failed every time)"]
    first_peak = next((t for t, r, _ in known if r >= peak), None)
    most = max(r for _, r, _ in known)
    if first_peak is None:
        ok = False
        lines.append(f"peak: FAIL: at most {most} instance(s) in service, expected {peak} within {peak_by}s")
    elif first_peak > peak_by:
        ok = False
        lines.append(f"peak: FAIL: {peak} instance(s) after {first_peak}s, later than the policy's {peak_by}s")
    else:
        lines.append(f"peak: ok: {peak} instance(s) after {first_peak}s (bound {peak_by}s)")
    # Back at the minimum after the load stopped, and still there at the last sample.
    settled = None
    for t, r, g in known:
        if t < load_stopped_at:
            continue
        at_min = r == after and (g is None or g == after)
        if at_min and settled is None:
            settled = t
        elif not at_min:
            settled = None
    last_t, last_r, _ = known[-1]
    if settled is None:
        ok = False
        lines.append(f"final: FAIL: {last_r} instance(s) in service {last_t - load_stopped_at}s after the load "
                     f"stopped, expected {after} within {final_by}s")
    elif settled - load_stopped_at > final_by:
        ok = False
        lines.append(f"final: FAIL: back to {after} {settled - load_stopped_at}s after the load stopped, later than "
                     f"the policy's {final_by}s")
    else:
        lines.append(f"final: ok: back to {after} {settled - load_stopped_at}s after the load stopped "
                     f"(bound {final_by}s)")
    if min(r for _, r, _ in known) < lo:
        lines.append(f"note: the count went below the minimum {lo} (an instance replaced during the demo?)")
    return ok, lines


def read_samples(path):
    samples = []
    for line in open(path):
        parts = line.split()
        if len(parts) < 2:
            continue
        t = int(float(parts[0]))
        running = int(parts[1]) if parts[1].isdigit() else None
        target = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        samples.append((t, running, target))
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    stores = ["dynamodb", "firestore", "cosmos", "none"]
    cal = sub.add_parser("calibrate")
    cal.add_argument("output_file")
    cal.add_argument("--cpu-target", type=float, default=0.6)
    cal.add_argument("--store", choices=stores)
    cal.add_argument("--max-instances", type=int, default=4)
    cal.add_argument("--max-demo-rate", type=int, default=DEFAULT_MAX_DEMO_RATE,
                     help="cap the target so the demo's load stays under this many req/s (0: no cap)")
    cal.add_argument("--instance-type", help="the instance's type (burstable types are capped at their baseline)")
    cal.add_argument("--baseline", type=float, help="sustained share of all vCPUs, overriding the table")
    load = sub.add_parser("calibration-load")
    load.add_argument("--store", choices=stores)
    load.add_argument("--seconds", type=int, default=60)
    pl = sub.add_parser("plan")
    pl.add_argument("--target", type=int, required=True)
    pl.add_argument("--min", type=int, required=True)
    pl.add_argument("--max", type=int, required=True)
    pl.add_argument("--store", choices=stores)
    pl.add_argument("--cloud", choices=sorted(POLICY))
    pl.add_argument("--rate", type=float)
    pl.add_argument("--ramp", type=seconds_of)
    pl.add_argument("--duration", type=seconds_of)
    pl.add_argument("--stress", action="store_true")
    ver = sub.add_parser("verify")
    ver.add_argument("plan_json")
    ver.add_argument("samples_file")
    ver.add_argument("load_stopped_at", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "calibrate":
            fields, report = parse_calibration(open(args.output_file).read())
            result = calibrate(fields, report, args.cpu_target, args.store, args.max_instances, args.max_demo_rate,
                               args.instance_type, args.baseline)
        elif args.command == "calibration-load":
            result = calibration_load(args.store, args.seconds)
        elif args.command == "plan":
            rate = None if args.rate is None else (int(args.rate) if args.rate.is_integer() else args.rate)
            result = plan(args.target, args.min, args.max, args.store, cloud=args.cloud, rate=rate,
                          ramp_s=args.ramp, duration_s=args.duration, stress=args.stress)
        else:
            ok, lines = verify(json.loads(args.plan_json), read_samples(args.samples_file), args.load_stopped_at)
            for line in lines:
                print(line)
            return 0 if ok else 1
    except ValueError as e:
        print(f"scaling.py: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
