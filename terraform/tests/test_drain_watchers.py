"""The instance-side scripts that drain candidate-server before the platform deletes the VM,
run against a fake metadata server on 127.0.0.1 and a fake systemctl."""
import os
import subprocess
import unittest

from fakes import FakeSystemctl, Metadata, run

HERE = os.path.dirname(os.path.abspath(__file__))
AWS = os.path.join(HERE, "..", "aws", "files", "lifecycle-drain.sh")


class AwsLifecycleDrain(unittest.TestCase):
    def systemctl(self):
        fake = FakeSystemctl()
        self.addCleanup(fake.close)
        return fake

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


if __name__ == "__main__":
    unittest.main()
