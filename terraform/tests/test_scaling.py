"""The scale demo's arithmetic (scripts/deploy/scaling.py) and the calibration run end to end
against the real release binaries on 127.0.0.1 (scripts/deploy/calibrate-instance.sh, as it runs
on an instance): the demo's load must put the minimum number of instances above the target and
settle at the maximum, ramp within Firestore's 500/50/5 rule, and stay under Cosmos DB
serverless's 5,000 RU/s."""
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "deploy"))
import scaling  # noqa: E402


def firestore_limit(t):
    return 500 * 1.5 ** math.floor(t / 300)


class Plan(unittest.TestCase):
    def test_the_demo_crosses_the_threshold_and_settles_at_max(self):
        for target in (1, 37, 200, 1000, 5000):
            for lo, hi in ((1, 2), (2, 4), (2, 10)):
                p = scaling.plan(target, lo, hi)
                self.assertTrue(p["crosses_threshold"], p)
                self.assertGreater(p["rate"] / lo, target, p)
                # Every cloud's policy holds an instance at `target`: steady state ceil(rate / target).
                self.assertEqual(math.ceil(p["rate"] / target), hi, p)
                self.assertEqual((p["expected_min"], p["expected_peak"], p["expected_after"]), (lo, hi, lo))

    def test_firestore_ramp_stays_within_500_50_5(self):
        for target in (100, 200, 1000, 3000):
            p = scaling.plan(target, 2, 4, store="firestore")
            ops, ramp = p["store_ops_per_s"], p["ramp_s"]
            for t in range(0, ramp + 3600, 5):
                rate = ops * min(t, ramp) / ramp if ramp else ops
                self.assertLessEqual(rate, firestore_limit(t) + 1e-6, (target, t, rate))
            # ...and is not needlessly long: 30 s shorter would break the rule (or go under 5 min).
            if ramp > scaling.DEFAULT_RAMP_S:
                self.assertNotEqual(scaling.firestore_ramp_s(ops), 0)
                shorter = ramp - 30
                broken = any(ops * min(t, shorter) / shorter > firestore_limit(t) + 1e-6
                             for t in range(0, shorter + 1, 1))
                self.assertTrue(broken, (target, ramp))

    def test_firestore_rule_itself(self):
        self.assertEqual(scaling.firestore_ramp_s(400), 0)
        self.assertGreater(scaling.firestore_ramp_s(501), 0)

    def test_cosmos_serverless_cap_refuses_a_demo_over_it(self):
        ok = scaling.plan(200, 2, 4, store="cosmos")
        self.assertTrue(any("RU/s" in n for n in ok["notes"]))
        with self.assertRaisesRegex(ValueError, "5000 RU/s"):
            scaling.plan(2000, 2, 4, store="cosmos")

    def test_calibration_caps_the_target_under_cosmos_serverless(self):
        fields = {"cpu_ticks": "100", "hz": "100", "cores": "2"}
        report = {"ok": 100000, "sent": 100000, "elapsed_s": 10.0}
        free = scaling.calibrate(fields, report, 0.6, max_demo_rate=0)
        self.assertEqual(free["bound"], "cpu")
        # 1 s of CPU for 100,000 requests: 10 us each; 2 cores at 60 % -> 120,000 req/s.
        self.assertEqual(free["target_requests_per_instance_per_second"], 120000)
        capped = scaling.calibrate(fields, report, 0.6, store="cosmos", max_instances=4, max_demo_rate=0)
        self.assertEqual(capped["bound"], "cosmos-serverless")
        # The default caps the demo at 3,000 req/s: 3000 / 3.5 = 857 per instance.
        drivable = scaling.calibrate(fields, report, 0.6)
        self.assertEqual((drivable["bound"], drivable["target_requests_per_instance_per_second"]), ("demo-rate", 857))
        self.assertLessEqual(scaling.plan(857, 2, 4)["rate"], 3000)
        scaling.plan(capped["target_requests_per_instance_per_second"], 2, 4, store="cosmos")  # does not raise

    def test_calibration_refuses_a_run_without_successes(self):
        with self.assertRaises(ValueError):
            scaling.calibrate({"cpu_ticks": "5", "hz": "100", "cores": "2"}, {"ok": 0, "sent": 10, "elapsed_s": 1})


class ScaleDemoScript(unittest.TestCase):
    """scripts/deploy/lib.sh's scale_demo prints the expected counts before any load starts (the
    load generator is replaced by `true`, the cloud's count by a constant)."""

    def test_prints_the_expected_instance_counts_before_the_load(self):
        script = ("source scripts/deploy/lib.sh; count() { echo 2; }; build_client() { :; }; CANDIDATECTL=true; "
                  "INTERVAL=1 WATCH_AFTER=0 scale_demo http://127.0.0.1:9 200 2 4 firestore count")
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        out = run.stdout + run.stderr
        expected = out.find("expected instance counts: 2 now -> 4 at full load (700 req/s")
        load = out.find("==> load: 700 req/s (ramp 390s, total 1290s)")
        self.assertGreaterEqual(expected, 0, out)
        self.assertGreater(load, expected, out)

    def test_refuses_a_demo_over_the_cosmos_serverless_cap(self):
        script = ("source scripts/deploy/lib.sh; count() { echo 2; }; build_client() { :; }; CANDIDATECTL=true; "
                  "INTERVAL=1 WATCH_AFTER=0 scale_demo http://127.0.0.1:9 3000 2 4 cosmos count")
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("5000 RU/s", run.stderr)
        self.assertNotIn("==> load:", run.stdout + run.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(os.access(os.path.join(ROOT, "dist", "candidatectl"), os.X_OK),
                     "dist/ has no release build (scripts/build-release.sh; scripts/test.sh builds it first)")
class CalibrationRun(unittest.TestCase):
    """calibrate-instance.sh as it runs on an instance, against a real server on 127.0.0.1."""

    def test_calibration_measures_the_servers_cpu_per_request_and_yields_a_target(self):
        http, grpc = free_port(), free_port()
        with tempfile.TemporaryDirectory() as data:
            env = {"PATH": "/usr/bin:/bin", "CANDIDATES_STORE": "memory", "CANDIDATES_DATA_DIR": data,
                   "CANDIDATES_HTTP_ADDR": f"127.0.0.1:{http}", "CANDIDATES_GRPC_ADDR": f"127.0.0.1:{grpc}",
                   "CANDIDATES_DRAIN_PERIOD": "0s", "CANDIDATES_LOG_FORMAT": "json"}
            server = subprocess.Popen([os.path.join(ROOT, "dist", "candidate-server")], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{http}/gtg", timeout=1)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                run = subprocess.run(
                    ["bash", os.path.join(ROOT, "scripts", "deploy", "calibrate-instance.sh"), "3", "8",
                     f"http://127.0.0.1:{http}", str(server.pid)],
                    env=dict(os.environ, CANDIDATECTL=os.path.join(ROOT, "dist", "candidatectl"), KEYS="200"),
                    capture_output=True, text=True, timeout=120)
            finally:
                server.terminate()
                server.wait(timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        fields, report = scaling.parse_calibration(run.stdout)
        result = scaling.calibrate(fields, report, 0.6, max_demo_rate=0)
        print(f"\nlocal calibration (memory store, 127.0.0.1, c=8, 3 s): {json.dumps(result)}", file=sys.stderr)
        self.assertGreater(result["requests_ok"], 100)
        self.assertEqual(result["errors"], 0)
        self.assertGreater(result["server_cpu_s"], 0)
        self.assertGreater(result["target_requests_per_instance_per_second"], 0)
        p = scaling.plan(result["target_requests_per_instance_per_second"], 2, 4)
        self.assertTrue(p["crosses_threshold"])


if __name__ == "__main__":
    unittest.main()
