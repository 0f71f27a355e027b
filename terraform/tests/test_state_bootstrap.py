"""Remote state (docs/deploy-<cloud>.md, Remote state): scripts/{aws,azure,gcp}/bootstrap-state.sh
and tf_init (scripts/deploy/state.sh), which apply.sh and destroy.sh call instead of a bare
`terraform init`.

- shellcheck on the scripts;
- each bootstrap script's --dry-run against fake cloud CLIs and a fake terraform: it plans, prints
  the backend file it would write, and neither applies nor writes anything; without --dry-run it
  applies and writes the backend file from the state root's outputs;
- tf_init: local state when no backend file exists; with one, a local state that still holds
  resources stops it (or, with MIGRATE_STATE=1, is copied with -migrate-state -force-copy);
- AWS for real against moto on 127.0.0.1 (the real hashicorp/aws provider from the local mirror,
  as terraform/tests/moto/run.sh): the dry run creates nothing; the bootstrap creates the bucket
  with every setting terraform/state/aws asks for, read back through the S3 API; a root then keeps
  its state in that bucket with the S3 backend the script wrote (use_lockfile): the state object
  lands there encrypted, the lock object exists while an apply runs and is gone after it, each
  apply leaves a version, and a local state is moved there by tf_init with MIGRATE_STATE=1.
Nothing leaves this machine."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from fakes import FakeCommands  # noqa: E402

SCRIPTS = [f"scripts/{c}/bootstrap-state.sh" for c in ("aws", "azure", "gcp")] + ["scripts/deploy/state.sh"]
AZURE_ENV = {"ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s", "ARM_TENANT_ID": "t", "ARM_SUBSCRIPTION_ID": "sub"}
# What terraform/state/<cloud> outputs (name -> value), as `terraform output -json` prints them.
OUTPUTS = {
    "aws": {"bucket": "candidates-tfstate-123456789012-us-east-2", "region": "us-east-2"},
    "azure": {"container_name": "tfstate", "resource_group_name": "candidates-tfstate",
              "storage_account_id": "/subscriptions/sub/resourceGroups/candidates-tfstate/providers/"
                                    "Microsoft.Storage/storageAccounts/cand0123456789abcdef",
              "storage_account_name": "cand0123456789abcdef"},
    "gcp": {"bucket": "proj-candidates-tfstate"},
}


def output_json(values):
    return json.dumps({k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()})


def plan_json(values, unknown=()):
    return json.dumps({"planned_values": {"outputs": {
        k: ({"sensitive": False} if k in unknown else {"sensitive": False, "value": v}) for k, v in values.items()}}})


class Shellcheck(unittest.TestCase):
    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck not installed")
    def test_the_state_scripts_pass_shellcheck(self):
        r = subprocess.run(["shellcheck", "-x", *SCRIPTS, "scripts/aws/env.sh", "scripts/azure/env.sh",
                            "scripts/gcp/env.sh"], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Bootstrap(unittest.TestCase):
    """The bootstrap scripts against fake CLIs: what they run and what they write."""

    def setUp(self):
        self.fake = FakeCommands()
        self.addCleanup(self.fake.close)
        self.work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.work)
        self.backend = os.path.join(self.work, "backend_override.tf")
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn:aws:iam::123456789012:user/op", 0)])
        self.fake.add("az", [(["account", "show"], "c", 0)])
        self.fake.add("gcloud", [(["config", "get-value", "project"], "proj", 0),
                                 (["print-access-token"], "token", 0)])

    def run_script(self, cloud, *args, **env):
        values = OUTPUTS[cloud]
        unknown = ("storage_account_id",) if cloud == "azure" else ()
        self.fake.add("terraform", [(["show", "-json"], plan_json(values, unknown), 0),
                                    (["output", "-json"], output_json(values), 0)])
        full = self.fake.env(BACKEND_FILE=self.backend, AUTO_APPROVE="1", STACK="candidates",
                             **(AZURE_ENV if cloud == "azure" else {}), **env)
        full.pop("GOOGLE_CLOUD_PROJECT", None)
        # The scripts' default region (us-east-2), whatever the suite exports (scripts/test.sh sets
        # AWS_REGION=us-east-1 for the SDK clients).
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if name not in env:
                full.pop(name, None)
        full["CANDIDATES_AZURE_CONFIG_DIR"] = os.path.join(self.work, "az")
        return subprocess.run(["bash", os.path.join(ROOT, f"scripts/{cloud}/bootstrap-state.sh"), *args],
                              env=full, capture_output=True, text=True, timeout=60)

    def terraform_calls(self):
        return [c[1:] for c in self.fake.calls("terraform")]

    def check_dry_run(self, cloud, expected):
        r = self.run_script(cloud, "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = self.terraform_calls()
        self.assertEqual([c[1] for c in calls], ["init", "plan", "show"], calls)
        for c in calls:
            self.assertTrue(c[0].startswith("-chdir=") and c[0].endswith(f"terraform/state/{cloud}"), c)
        self.assertFalse(any("apply" in c for c in calls), calls)
        self.assertFalse(os.path.exists(self.backend), "a dry run wrote the backend file")
        for text in expected:
            self.assertIn(text, r.stdout)
        self.assertIn("dry run: no state store created, no backend file written", r.stderr)
        return r

    def check_apply(self, cloud, expected):
        r = self.run_script(cloud)
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = self.terraform_calls()
        self.assertEqual([c[1] for c in calls], ["init", "plan", "apply", "output"], calls)
        self.assertIn("-auto-approve", calls[2])
        with open(self.backend) as f:
            text = f.read()
        for line in expected:
            self.assertIn(line, text)
        return calls, text

    def test_aws(self):
        expected = ['backend "s3"', 'bucket       = "candidates-tfstate-123456789012-us-east-2"',
                    'key          = "candidates/aws.tfstate"', 'region       = "us-east-2"',
                    "encrypt      = true", "use_lockfile = true"]
        self.check_dry_run("aws", expected)
        self.setUp()
        calls, text = self.check_apply("aws", expected)
        self.assertIn("region=us-east-2", calls[1])
        self.assertNotIn("dynamodb_table", text, "DynamoDB locking is deprecated; use_lockfile replaces it")

    def test_azure(self):
        expected = ['backend "azurerm"', 'storage_account_name = "cand0123456789abcdef"',
                    'container_name       = "tfstate"', 'key                  = "candidates/azure.tfstate"',
                    "use_azuread_auth     = true"]
        self.check_dry_run("azure", expected)
        self.setUp()
        calls, text = self.check_apply("azure", expected)
        self.assertNotIn("access_key", text)
        self.assertNotIn("grant_blob_data_role=false", calls[1])

    def test_azure_without_the_right_to_assign_roles_prints_the_assignment(self):
        r = self.run_script("azure", GRANT_BLOB_ROLE="0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("grant_blob_data_role=false", self.terraform_calls()[1])
        self.assertIn("az role assignment create --role 'Storage Blob Data Contributor' --assignee c --scope "
                      "/subscriptions/sub/", r.stderr)

    def test_gcp(self):
        expected = ['backend "gcs"', 'bucket = "proj-candidates-tfstate"', 'prefix = "candidates/gcp"']
        self.check_dry_run("gcp", expected)
        self.setUp()
        calls, _ = self.check_apply("gcp", expected)
        self.assertIn("project_id=proj", calls[1])

    def test_unknown_argument_is_refused_before_anything_runs(self):
        r = self.run_script("gcp", "--dryrun")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown argument: --dryrun", r.stderr)
        self.assertEqual(self.terraform_calls(), [])

    def test_help_needs_no_credentials(self):
        self.fake.add("aws", [(["sts"], "", 255)])
        r = self.run_script("aws", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--dry-run", r.stdout)
        self.assertEqual(self.fake.calls("aws"), [])
        self.assertEqual(self.terraform_calls(), [])

    def test_no_credentials_stops_before_terraform(self):
        self.fake.add("aws", [(["sts"], "", 255)])
        r = self.run_script("aws", "--dry-run")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no AWS credentials", r.stderr)
        self.assertEqual(self.terraform_calls(), [])


TF_INIT = r'''
set -euo pipefail
source "$REPO/scripts/deploy/lib.sh"
source "$REPO/scripts/deploy/state.sh"
ROOT=$WORK
tf_init aws
'''


class TfInit(unittest.TestCase):
    """tf_init in a scratch tree (ROOT pointed at it) with a fake terraform."""

    def setUp(self):
        self.fake = FakeCommands()
        self.addCleanup(self.fake.close)
        self.fake.add("terraform", [])
        self.work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.work)
        self.dir = os.path.join(self.work, "terraform", "aws")
        os.makedirs(self.dir)

    def init(self, **env):
        return subprocess.run(["bash", "-c", TF_INIT], env=self.fake.env(REPO=ROOT, WORK=self.work, **env),
                              capture_output=True, text=True, timeout=30)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def inits(self):
        return [c[2:] for c in self.fake.calls("terraform")]

    def test_without_a_backend_file_the_state_is_local(self):
        r = self.init()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.inits(), [["init", "-input=false"]])
        self.assertIn("local state in terraform/aws/terraform.tfstate", r.stderr)
        self.assertIn("scripts/aws/bootstrap-state.sh", r.stderr)

    def test_with_a_backend_file_it_says_where_the_state_is(self):
        self.write("backend_override.tf", 'terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n  }\n}\n')
        r = self.init()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.inits(), [["init", "-input=false"]])
        self.assertIn("remote state, s3 bucket=b key=k", r.stderr)

    def test_local_resources_stop_it_unless_asked_to_migrate(self):
        self.write("backend_override.tf", 'terraform {\n  backend "s3" {}\n}\n')
        self.write("terraform.tfstate", json.dumps({"version": 4, "resources": [{"type": "x"}, {"type": "y"}]}))
        r = self.init()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("terraform/aws/terraform.tfstate holds 2 resources", r.stderr)
        self.assertIn("MIGRATE_STATE=1 scripts/aws/apply.sh", r.stderr)
        self.assertEqual(self.inits(), [])
        r = self.init(MIGRATE_STATE="1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.inits(), [["init", "-input=false", "-migrate-state", "-force-copy"]])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "terraform.tfstate")))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "terraform.tfstate.migrated")))

    def test_an_empty_local_state_is_set_aside(self):
        self.write("backend_override.tf", 'terraform {\n  backend "s3" {}\n}\n')
        self.write("terraform.tfstate", json.dumps({"version": 4, "resources": []}))
        r = self.init()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.inits(), [["init", "-input=false"]])
        self.assertTrue(os.path.exists(os.path.join(self.dir, "terraform.tfstate.local-empty")))


# --- AWS against moto -------------------------------------------------------------------------

AWS_PROVIDER_VERSION = "5.100.0"
MIRROR = os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins")
REGION = "us-east-2"


def moto_skip_reason():
    if not shutil.which("terraform"):
        return "terraform is not installed"
    if not os.path.isdir(os.path.join(MIRROR, "registry.terraform.io/hashicorp/aws", AWS_PROVIDER_VERSION)):
        return f"no hashicorp/aws {AWS_PROVIDER_VERSION} in the provider mirror {MIRROR} (never downloaded)"
    if not shutil.which("moto_server"):
        return "moto_server is not installed (terraform/tests/moto/run.sh installs it)"
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 is not importable"
    return None


PROBE_ROOT = '''
variable "n" {
  type    = number
  default = 1
}

# Replaced when n changes; its create sleeps, so the lock is held long enough to be seen.
resource "terraform_data" "probe" {
  triggers_replace = var.n

  provisioner "local-exec" {
    command = "sleep 4"
  }
}
'''


@unittest.skipIf(moto_skip_reason(), moto_skip_reason() or "")
class AwsAgainstMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import boto3
        cls.work = tempfile.mkdtemp()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.endpoint = f"https://127.0.0.1:{port}"
        cls.moto_log = open(os.path.join(cls.work, "moto.log"), "w")
        # TLS with a certificate of our own for 127.0.0.1: the bucket policy denies plain HTTP
        # (aws:SecureTransport false), and moto enforces that deny on object requests.
        cls.cert, key = os.path.join(cls.work, "moto.crt"), os.path.join(cls.work, "moto.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key,
                        "-out", cls.cert], check=True, capture_output=True)
        cls.moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port), "-c", cls.cert,
                                     "-k", key], stdout=cls.moto_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or cls.moto.poll() is not None:
                    raise RuntimeError("moto_server did not come up")
                time.sleep(0.1)
        cls.s3 = boto3.client("s3", endpoint_url=cls.endpoint, region_name=REGION, verify=cls.cert,
                              aws_access_key_id="test", aws_secret_access_key="test")
        with open(os.path.join(cls.work, "cli.tfrc"), "w") as f:
            f.write('provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n'
                    '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' % MIRROR)
        # A copy of terraform/state/aws with the provider pointed at moto (an override file, as
        # terraform/tests/moto/run.sh does for terraform/aws); the root itself is unchanged.
        cls.state_root = os.path.join(cls.work, "state-aws")
        shutil.copytree(os.path.join(ROOT, "terraform/state/aws"), cls.state_root,
                        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        with open(os.path.join(cls.state_root, "moto_override.tf"), "w") as f:
            f.write(f'''provider "aws" {{
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {{
    s3  = "{cls.endpoint}"
    sts = "{cls.endpoint}"
  }}
}}
''')
        # The S3 backend's settings for moto, given to every init (TF_CLI_ARGS_init) next to the
        # backend file the script writes, which stays as it would be for AWS.
        cls.moto_backend = os.path.join(cls.work, "moto-backend.hcl")
        with open(cls.moto_backend, "w") as f:
            f.write(f'''endpoints = {{
  s3  = "{cls.endpoint}"
  sts = "{cls.endpoint}"
}}
use_path_style              = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
''')
        # aws sts get-caller-identity (check_aws) against moto too.
        cls.fake = FakeCommands()
        cls.env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                       AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_ENDPOINT_URL=cls.endpoint,
                       HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                       NO_PROXY="127.0.0.1,localhost", https_proxy="http://127.0.0.1:9",
                       http_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1,localhost",
                       CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0",
                       TF_CLI_CONFIG_FILE=os.path.join(cls.work, "cli.tfrc"),
                       STATE_ROOT=cls.state_root, STACK="candidates", SSL_CERT_FILE=cls.cert,
                       AWS_CA_BUNDLE=cls.cert, TF_CLI_ARGS_plan="-no-color", TF_CLI_ARGS_apply="-no-color")
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "TF_DATA_DIR"):
            cls.env.pop(k, None)
        cls.backend = os.path.join(cls.work, "backend_override.tf")

    @classmethod
    def tearDownClass(cls):
        cls.moto.terminate()
        cls.moto.wait(timeout=10)
        cls.moto_log.close()
        cls.fake.close()
        if os.environ.get("KEEP_WORK"):
            print(f"kept {cls.work}", file=sys.stderr)
        else:
            shutil.rmtree(cls.work)

    def bootstrap(self, *args):
        return subprocess.run(["bash", os.path.join(ROOT, "scripts/aws/bootstrap-state.sh"), *args],
                              env=dict(self.env, BACKEND_FILE=self.backend, AUTO_APPROVE="1"),
                              capture_output=True, text=True, timeout=300)

    def buckets(self):
        return [b["Name"] for b in self.s3.list_buckets().get("Buckets", [])]

    def test_1_dry_run_plans_and_creates_nothing(self):
        r = self.bootstrap("--dry-run")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertIn("Plan: 7 to add, 0 to change, 0 to destroy.", r.stdout)
        self.assertIn('bucket       = "candidates-tfstate-123456789012-us-east-2"', r.stdout)
        self.assertEqual(self.buckets(), [])
        self.assertFalse(os.path.exists(self.backend))
        # A default name over S3's 63 characters is refused at plan, naming the way out.
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts/aws/bootstrap-state.sh"), "--dry-run"],
                           env=dict(self.env, BACKEND_FILE=self.backend, STACK="a-stack-name-of-31-characters-x",
                                    AWS_REGION="ap-southeast-2", AWS_DEFAULT_REGION="ap-southeast-2"),
                           capture_output=True, text=True, timeout=300)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("over S3's 63 characters: set bucket_name", " ".join((r.stdout + r.stderr).split()))
        self.assertEqual(self.buckets(), [])

    def test_2_bootstrap_then_a_root_keeps_its_state_there_locked(self):
        r = self.bootstrap()
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        bucket = "candidates-tfstate-123456789012-us-east-2"
        self.assertEqual(self.buckets(), [bucket])
        s3 = self.s3
        # Every setting of terraform/state/aws, read back.
        self.assertEqual(s3.get_bucket_versioning(Bucket=bucket)["Status"], "Enabled")
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        self.assertEqual(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        self.assertEqual(block, {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                 "RestrictPublicBuckets": True})
        ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]
        self.assertEqual(ownership["ObjectOwnership"], "BucketOwnerEnforced")
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        insecure = [s for s in policy["Statement"] if s["Effect"] == "Deny"
                    and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        self.assertEqual(len(insecure), 1, policy)
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
        self.assertEqual(lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"], 90)
        # moto gap (5.2): a bucket policy's Deny applies to every object request whatever its
        # Condition (a Deny on aws:SecureTransport false refuses HTTPS requests too), so the
        # policy, checked above, is taken off before the backend uses the bucket.
        s3.delete_bucket_policy(Bucket=bucket)

        # A root (terraform_data only: no provider) with the backend file the script wrote.
        with open(self.backend) as f:
            self.assertIn("use_lockfile = true", f.read())
        tree = os.path.join(self.work, "tree")
        root = os.path.join(tree, "terraform", "aws")
        os.makedirs(root)
        with open(os.path.join(root, "main.tf"), "w") as f:
            f.write(PROBE_ROOT)
        env = dict(self.env, TF_CLI_ARGS_init=f"-backend-config={self.moto_backend}")

        def tf(*args, **kw):
            return subprocess.run(["terraform", f"-chdir={root}", *args, "-no-color"], env=env,
                                  capture_output=True, text=True, timeout=120, **kw)

        def tf_init(**extra):
            script = ('set -euo pipefail; source "$REPO/scripts/deploy/lib.sh"; '
                      'source "$REPO/scripts/deploy/state.sh"; ROOT=$WORK; tf_init aws')
            return subprocess.run(["bash", "-c", script], env=dict(env, REPO=ROOT, WORK=tree, **extra),
                                  capture_output=True, text=True, timeout=120)

        # First, local state (a first try): one resource in terraform.tfstate.
        r = tf_init()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("local state", r.stderr)
        r = tf("apply", "-auto-approve", "-input=false")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        shutil.copy(self.backend, os.path.join(root, "backend_override.tf"))
        # The backend file in place: tf_init refuses to leave the resource behind, then moves it.
        r = tf_init()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("holds 1 resources", r.stderr)
        r = tf_init(MIGRATE_STATE="1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        key = "candidates/aws.tfstate"
        state = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        self.assertEqual([res["type"] for res in state["resources"]], ["terraform_data"])
        self.assertEqual(s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"], "AES256")
        self.assertFalse(os.path.exists(os.path.join(root, "terraform.tfstate")))
        r = tf("state", "list")
        self.assertEqual(r.stdout.split(), ["terraform_data.probe"], r.stderr)

        # An apply that replaces the resource holds the lock (<key>.tflock) while it runs.
        apply = subprocess.Popen(["terraform", f"-chdir={root}", "apply", "-auto-approve", "-input=false",
                                  "-var", "n=2", "-no-color"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        seen, lock = None, None
        deadline = time.time() + 60
        while apply.poll() is None and time.time() < deadline:
            objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            lock = next((o for o in objects if o["Key"] == key + ".tflock"), None)
            if lock:
                seen = json.loads(s3.get_object(Bucket=bucket, Key=key + ".tflock")["Body"].read())
                break
            time.sleep(0.2)
        # A second apply meanwhile must be refused by the lock.
        if seen:
            r = tf("plan", "-input=false", "-lock-timeout=0s", "-var", "n=3")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Error acquiring the state lock", r.stdout + r.stderr)
        out = apply.communicate(timeout=60)[0]
        self.assertEqual(apply.returncode, 0, out)
        self.assertIsNotNone(seen, "no lock object while the apply ran")
        self.assertEqual(seen["Operation"], "OperationTypeApply")
        self.assertEqual(seen["Path"], f"{bucket}/{key}")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        self.assertEqual(keys, [key], "the lock object must be gone after the apply")
        versions = [v for v in s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"] if v["Key"] == key]
        self.assertGreaterEqual(len(versions), 2, "each write keeps a version")


if __name__ == "__main__":
    unittest.main()
