"""Renders terraform/templates/cloud-init.yaml.tftpl with Terraform's own templatefile() (through
`terraform console` in an empty directory: no providers needed) and checks that cloud-init would
get valid YAML: the env file with exactly the given keys, and extra files byte for byte."""
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.abspath(os.path.join(HERE, "..", "templates", "cloud-init.yaml.tftpl"))
DRAIN_SCRIPT = os.path.abspath(os.path.join(HERE, "..", "aws", "files", "lifecycle-drain.sh"))
DRAIN_UNIT = os.path.abspath(os.path.join(HERE, "..", "aws", "files", "candidates-lifecycle.service"))


def render(expression):
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run(
            ["terraform", "console"], input=expression, capture_output=True, text=True, cwd=empty,
            env=dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1"), timeout=60,
        )
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    # console prints a string as a heredoc (<<EOT ... EOT) or a quoted one-liner.
    text = out.stdout.strip()
    assert text.startswith("<<EOT") and text.endswith("EOT"), text[:200]
    return text[len("<<EOT\n"):-len("EOT")]


def hcl_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${").replace("%{", "%%{") + '"'


@unittest.skipUnless(shutil.which("terraform"), "terraform not installed")
class CloudInit(unittest.TestCase):
    def render(self, env, files, units):
        env_hcl = "{" + ", ".join(f"{k} = {hcl_string(v)}" for k, v in env.items()) + "}"
        files_hcl = "[" + ", ".join(
            f'{{path = "{p}", permissions = "{mode}", content = file("{src}")}}' for p, mode, src in files) + "]"
        units_hcl = "[" + ", ".join(f'"{u}"' for u in units) + "]"
        return render(f'templatefile("{TEMPLATE}", {{deployment = "test", env = {env_hcl}, '
                      f'files = {files_hcl}, enable_units = {units_hcl}}})\n')

    def test_env_file_and_extra_files_survive_rendering(self):
        env = {
            "CANDIDATES_STORE": "dynamodb",
            "CANDIDATES_DYNAMODB_TABLE": "Candidates",
            "COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
            "CANDIDATES_HTTP_ADDR": "0.0.0.0:8000",
        }
        files = [("/usr/local/sbin/candidates-lifecycle-drain", "0755", DRAIN_SCRIPT),
                 ("/etc/systemd/system/candidates-lifecycle.service", "0644", DRAIN_UNIT)]
        text = self.render(env, files, ["candidates-lifecycle.service"])
        self.assertTrue(text.startswith("#cloud-config\n"), text[:40])
        doc = yaml.safe_load(text)

        env_file = doc["write_files"][0]
        self.assertEqual(env_file["path"], "/etc/candidates/candidates.env")
        self.assertEqual((env_file["owner"], env_file["permissions"]), ("root:candidates", "0640"))
        pairs = dict(line.split("=", 1) for line in env_file["content"].splitlines()
                     if line and not line.startswith("#"))
        self.assertEqual(pairs, env)

        for (path, mode, src), entry in zip(files, doc["write_files"][1:], strict=True):
            self.assertEqual((entry["path"], entry["permissions"]), (path, mode))
            with open(src) as f:
                self.assertEqual(entry["content"].rstrip("\n"), f.read().rstrip("\n"))
        self.assertEqual(doc["runcmd"], [["systemctl", "daemon-reload"],
                                         ["systemctl", "enable", "--now", "candidates-lifecycle.service"]])

    def test_env_only(self):
        doc = yaml.safe_load(self.render({"CANDIDATES_STORE": "firestore"}, [], []))
        self.assertEqual(len(doc["write_files"]), 1)
        self.assertNotIn("runcmd", doc)
        self.assertIn("CANDIDATES_STORE=firestore", doc["write_files"][0]["content"].splitlines())


if __name__ == "__main__":
    unittest.main()
