#!/usr/bin/env python3
"""Monthly cost against steady request rate: the scaling-group deployments and the serverless ones.

A model, not a bill: each formula is the provider's published pricing rule, the inputs are the
deployments' defaults (terraform/*/variables.tf, terraform/serverless/*/variables.tf), the idle
costs of the scaling groups from docs/deploy-{aws,azure,gcp}.md, and two figures measured here
(bench/serverless.py: CPU time per request; the adapter's own share of a request's duration).
Every input is a flag, so a user can put in their own (region, sizes, store latency, bytes).

What it leaves out, on purpose: the store (DynamoDB, Cosmos DB, Firestore are billed per request
the same way whichever compute calls them), free tiers (per account, shared with other workloads),
taxes and committed-use or savings-plan discounts, egress to the internet (equal for both).

    python3 bench/cost_model.py [--store-ms 8] [--cpu-us 150] [--bytes 800]
"""
import argparse
import math

SECONDS_PER_MONTH = 730 * 3600  # the providers' 730-hour month


def lambda_cost(rps, a):
    """AWS Lambda behind a Function URL (no charge of its own): $ per request + GB-s of the
    configured memory for each invocation's duration, rounded up to 1 ms. One request per
    execution environment at a time, so nothing is shared between requests."""
    billed_s = math.ceil(a.store_ms + a.adapter_ms) / 1000
    per_request = a.lambda_request_price + billed_s * a.lambda_memory_gb * a.lambda_gb_s_price
    return rps * SECONDS_PER_MONTH * per_request


def busy_fraction(rps, window_s):
    """Share of the time an instance is billed when each request keeps it billable for at least
    `window_s` (requests arriving at random): 1 - e^(-rate x window)."""
    return 1 - math.exp(-rps * window_s)


def instances(rps, a, vcpus=None):
    """Instances a platform runs for this rate: CPU (`vcpus` sustained per instance) at the
    target utilisation decides."""
    return max(1, math.ceil(rps * a.cpu_us / 1e6 / ((vcpus or a.vcpus) * a.target_utilisation)))


def cloud_run_cost(rps, a):
    """Cloud Run, request-based billing (CPU only during requests): vCPU-s and GiB-s of each
    instance while it serves at least one request, rounded up to 100 ms, plus $ per request.
    Concurrent requests on one instance share its billed time."""
    n = instances(rps, a)
    billed = n * busy_fraction(rps / n, max(0.1, (a.store_ms + a.adapter_ms) / 1000)) * SECONDS_PER_MONTH
    per_second = a.vcpus * a.run_vcpu_s_price + a.run_memory_gib * a.run_gib_s_price
    return billed * per_second + rps * SECONDS_PER_MONTH * a.run_request_price


def flex_cost(rps, a):
    """Azure Functions Flex Consumption, on demand: GB-s of the instance memory while the instance
    executes anything (at least 1,000 ms per activity period, then 100 ms steps), plus $ per
    execution. Concurrent executions on one instance share its billed time."""
    n = instances(rps, a)
    billed = n * busy_fraction(rps / n, max(1.0, (a.store_ms + a.adapter_ms) / 1000)) * SECONDS_PER_MONTH
    return billed * a.flex_memory_gb * a.flex_gb_s_price + rps * SECONDS_PER_MONTH * a.flex_execution_price


def scaling_group_cost(idle, per_instance, min_instances, sustained_vcpus, lb_per_gb):
    """A scaling group: its idle stack (instances at the minimum, load balancers, NAT, logs), one
    more instance per `instances()` beyond the minimum (burstable types count at their baseline:
    `sustained_vcpus`), and the load balancer's per-GB charge
    (ALB LCUs, Application Gateway capacity units and Google's data processing all come to a
    per-GB figure for small keep-alive requests)."""
    def cost(rps, a):
        extra = max(0, instances(rps, a, sustained_vcpus) - min_instances) * per_instance
        gb = rps * SECONDS_PER_MONTH * a.bytes / 1e9
        return idle + extra + gb * lb_per_gb
    return cost


def crossover(serverless, group, a):
    """The lowest rate (req/s) at which the scaling group is cheaper, by bisection."""
    lo, hi = 0.001, 100_000.0
    if serverless(hi, a) < group(hi, a):
        return None
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if serverless(mid, a) < group(mid, a):
            lo = mid
        else:
            hi = mid
    return hi


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Measured here (bench/serverless.py) and assumed for the store.
    p.add_argument("--store-ms", type=float, default=8.0, help="store call latency per request, in-region")
    p.add_argument("--adapter-ms", type=float, default=0.3, help="the adapter's own time per request")
    p.add_argument("--cpu-us", type=float, default=150.0, help="CPU time per request (service + store SDK)")
    p.add_argument("--bytes", type=float, default=800.0, help="request + response bytes through the LB")
    p.add_argument("--target-utilisation", type=float, default=0.6)
    p.add_argument("--vcpus", type=float, default=1.0, help="vCPUs per serverless instance")
    # AWS Lambda (us-east-1, arm64; terraform/serverless/aws defaults: arm64, 512 MB).
    p.add_argument("--lambda-request-price", type=float, default=0.20e-6)
    p.add_argument("--lambda-gb-s-price", type=float, default=0.0000133334)
    p.add_argument("--lambda-memory-gb", type=float, default=0.5)
    # Cloud Run (tier 1, request-based billing; terraform/serverless/gcp defaults: 1 vCPU, 512 MiB).
    p.add_argument("--run-vcpu-s-price", type=float, default=0.000024)
    p.add_argument("--run-gib-s-price", type=float, default=0.0000025)
    p.add_argument("--run-request-price", type=float, default=0.40e-6)
    p.add_argument("--run-memory-gib", type=float, default=0.5)
    # Azure Functions Flex Consumption (on demand; terraform/serverless/azure default 2048 MB).
    p.add_argument("--flex-gb-s-price", type=float, default=0.000026)
    p.add_argument("--flex-execution-price", type=float, default=0.40e-6)
    p.add_argument("--flex-memory-gb", type=float, default=2.0)
    # The scaling groups' idle month (docs/deploy-*.md "Cost") and one more instance.
    p.add_argument("--aws-idle", type=float, default=110.0)
    p.add_argument("--aws-instance", type=float, default=15.2, help="t3.small, 730 h")
    p.add_argument("--azure-idle", type=float, default=340.0)
    p.add_argument("--azure-instance", type=float, default=30.4, help="Standard_B2s, 730 h")
    p.add_argument("--gcp-idle", type=float, default=75.0)
    p.add_argument("--gcp-instance", type=float, default=12.2, help="e2-small, 730 h")
    p.add_argument("--rates", default="0.01,0.1,1,5,10,25,50,100,250,500,1000,2500")
    a = p.parse_args()

    clouds = [
        # t3.small: 2 vCPUs at a 20 % baseline; ALB: 1 LCU ($0.008/h) per GB processed an hour.
        ("AWS", lambda_cost, scaling_group_cost(a.aws_idle, a.aws_instance, 2, 0.4, 0.008)),
        # B2s: 2 vCPUs at a 40 % baseline; Application Gateway v2: a capacity unit ($0.008/h) per
        # 2.22 Mbps, about 729 GB a month.
        ("Azure", flex_cost, scaling_group_cost(a.azure_idle, a.azure_instance, 3, 0.8, 5.84 / 729)),
        # e2-small: 2 shared vCPUs at 50 %; external Application LB: $0.008 per GB processed.
        ("GCP", cloud_run_cost, scaling_group_cost(a.gcp_idle, a.gcp_instance, 2, 1.0, 0.008)),
    ]
    print(f"inputs: store {a.store_ms} ms + adapter {a.adapter_ms} ms per request, {a.cpu_us:.0f} us CPU, "
          f"{a.bytes:.0f} B through the LB; free tiers and the store's own cost left out")
    header = f"{'req/s':>8} {'req/month':>10}"
    for name, _, _ in clouds:
        header += f" | {name + ' serverless':>16} {name + ' group':>11}"
    print(header)
    for rate in (float(r) for r in a.rates.split(",")):
        row = f"{rate:>8g} {rate * SECONDS_PER_MONTH / 1e6:>9.2f}M"
        for _, serverless, group in clouds:
            row += f" | {'$%.2f' % serverless(rate, a):>16} {'$%.0f' % group(rate, a):>11}"
        print(row)
    for name, serverless, group in clouds:
        at = crossover(serverless, group, a)
        print(f"{name}: the scaling group is cheaper from {at:.0f} req/s sustained "
              f"({at * SECONDS_PER_MONTH / 1e6:.0f}M requests a month)" if at else f"{name}: serverless stays cheaper")


if __name__ == "__main__":
    main()
