"""The instance-side scripts that drain candidate-server before the platform deletes the VM,
run against a fake metadata server on 127.0.0.1 and a fake systemctl."""
import json
import os
import subprocess
import unittest

from fakes import FakeSystemctl, Metadata, run, run_python

HERE = os.path.dirname(os.path.abspath(__file__))
AWS = os.path.join(HERE, "..", "aws", "files", "lifecycle-drain.sh")
AZURE = os.path.join(HERE, "..", "azure", "files", "scheduled-events-drain.py")


class WatcherTest(unittest.TestCase):
    def systemctl(self):
        fake = FakeSystemctl()
        self.addCleanup(fake.close)
        return fake


class AwsLifecycleDrain(WatcherTest):
    def serve(self, states):
        """IMDSv2: a token from PUT, required on the lifecycle-state GET."""
        states = list(states)

        def handler(method, path, headers, body):
            if method == "PUT" and path == "/latest/api/token":
                return 200, "token-1"
            if path == "/latest/meta-data/autoscaling/target-lifecycle-state":
                if headers.get("X-aws-ec2-metadata-token") != "token-1":
                    return 401, ""
                return 200, states.pop(0) if len(states) > 1 else states[0]
            return 404, ""

        imds = Metadata(handler)
        self.addCleanup(imds.close)
        return imds

    def test_stops_the_service_once_the_group_terminates_the_instance(self):
        imds = self.serve(["InService", "InService", "Terminated"])
        systemctl = self.systemctl()
        result = run(AWS, systemctl.env(IMDS_ENDPOINT=imds.url, POLL_SECONDS="0.05"), timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(systemctl.calls(), ["stop candidates.service"])
        gets = [r for r in imds.requests if r[0] == "GET"]
        self.assertEqual(len(gets), 3)
        self.assertTrue(all(r[2].get("X-aws-ec2-metadata-token") == "token-1" for r in gets))

    def test_keeps_serving_while_in_service_or_when_metadata_is_unreachable(self):
        for url in (self.serve(["InService"]).url, "http://127.0.0.1:9"):
            systemctl = self.systemctl()
            with self.assertRaises(subprocess.TimeoutExpired):
                run(AWS, systemctl.env(IMDS_ENDPOINT=url, POLL_SECONDS="0.05"), timeout=1)
            self.assertEqual(systemctl.calls(), [])


class AzureScheduledEvents(WatcherTest):
    VM = "candidates-vmss_3"

    def serve(self, documents):
        """IMDS: this VM's name, and the scheduled events documents in turn (the last repeats);
        POSTs (approvals) are recorded."""
        documents = list(documents)

        def handler(method, path, headers, body):
            if headers.get("Metadata") != "true":
                return 400, "Bad request: the Metadata header is required"
            if path.startswith("/metadata/instance/compute/name"):
                return 200, self.VM
            if path.startswith("/metadata/scheduledevents"):
                if method == "POST":
                    return 200, ""
                return 200, json.dumps(documents.pop(0) if len(documents) > 1 else documents[0])
            return 404, ""

        imds = Metadata(handler)
        self.addCleanup(imds.close)
        return imds

    @staticmethod
    def event(kind, resources, event_id="E1", status="Scheduled"):
        return {"DocumentIncarnation": 2, "Events": [{
            "EventId": event_id, "EventType": kind, "ResourceType": "VirtualMachine", "Resources": resources,
            "EventStatus": status, "NotBefore": "Mon, 30 Nov 2026 06:00:00 GMT", "EventSource": "Platform"}]}

    def run_watcher(self, imds_url, systemctl, timeout):
        return run_python(AZURE, systemctl.env(IMDS_ENDPOINT=imds_url, POLL_SECONDS="0.05"), timeout)

    def test_drains_then_approves_a_termination_of_this_vm(self):
        none = {"DocumentIncarnation": 1, "Events": []}
        imds = self.serve([none, none, self.event("Terminate", [self.VM], "A-1")])
        systemctl = self.systemctl()
        result = self.run_watcher(imds.url, systemctl, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(systemctl.calls(), ["stop candidates.service"])
        posts = [json.loads(r[3]) for r in imds.requests if r[0] == "POST"]
        self.assertEqual(posts, [{"StartRequests": [{"EventId": "A-1"}]}])

    def test_ignores_other_vms_freezes_and_started_events(self):
        for document in (self.event("Terminate", ["candidates-vmss_7"]), self.event("Freeze", [self.VM]),
                         self.event("Reboot", [self.VM], status="Started")):
            imds, systemctl = self.serve([document]), self.systemctl()
            # 3 s, not 1: on a loaded machine (a cargo build beside it) the interpreter's start alone
            # took over a second and the watcher had not polled yet (the last assertion failed).
            with self.assertRaises(subprocess.TimeoutExpired):
                self.run_watcher(imds.url, systemctl, timeout=3)
            self.assertEqual(systemctl.calls(), [], document)
            self.assertFalse([r for r in imds.requests if r[0] == "POST"], document)
            self.assertTrue([r for r in imds.requests if r[1].startswith("/metadata/scheduledevents")])

    def test_keeps_polling_when_metadata_is_unreachable(self):
        systemctl = self.systemctl()
        with self.assertRaises(subprocess.TimeoutExpired):
            self.run_watcher("http://127.0.0.1:9", systemctl, timeout=1)
        self.assertEqual(systemctl.calls(), [])


if __name__ == "__main__":
    unittest.main()
