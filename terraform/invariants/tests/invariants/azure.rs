use std::collections::BTreeSet;

use crate::infra::{
    Module, attr, binary, block, blocks, bool_attr, integers, num_attr, number, one_line, str_attr, strings, text,
    world_open,
};

fn azure() -> Module {
    Module::load("azure")
}

const DOCUMENTDB: &str = "Microsoft.DocumentDB/databaseAccounts/";

/// The Cosmos DB actions the backend says it needs, split into data-plane actions on the
/// container and the account-level metadata read.
fn backend_actions() -> (BTreeSet<String>, BTreeSet<String>) {
    let (metadata, data): (Vec<&str>, Vec<&str>) =
        candidates_server::store::cosmos::REQUIRED_PERMISSIONS.iter().partition(|p| **p == "readMetadata");
    let full = |v: Vec<&str>| v.into_iter().map(|a| format!("{DOCUMENTDB}{a}")).collect();
    (full(data), full(metadata))
}

#[test]
fn cosmos_roles_grant_exactly_the_backends_calls_at_container_scope() {
    let m = azure();
    let (want_data, want_metadata) = backend_actions();
    let data: BTreeSet<String> = strings(m.local("cosmos_data_actions")).into_iter().collect();
    assert_eq!(data, want_data, "local.cosmos_data_actions vs cosmos::REQUIRED_PERMISSIONS");
    let metadata: BTreeSet<String> = strings(m.local("cosmos_metadata_actions")).into_iter().collect();
    assert_eq!(metadata, want_metadata, "local.cosmos_metadata_actions vs cosmos::REQUIRED_PERMISSIONS");

    assert_eq!(
        one_line(m.local("container_scope")),
        "\"${azurerm_cosmosdb_account.this.id}/dbs/${azurerm_cosmosdb_sql_database.this.name}/colls/${azurerm_cosmosdb_sql_container.candidates.name}\""
    );
    let role = m.resource("azurerm_cosmosdb_sql_role_definition", "data");
    assert_eq!(text(role, "assignable_scopes"), "[local.container_scope]");
    assert_eq!(text(block(role, "permissions"), "data_actions"), "local.cosmos_data_actions");
    let role = m.resource("azurerm_cosmosdb_sql_role_definition", "metadata");
    assert_eq!(text(block(role, "permissions"), "data_actions"), "local.cosmos_metadata_actions");

    // The instances' identity gets exactly two assignments: data on the container, metadata on
    // the account; no Azure RBAC role at all (the only one in the stack is the gateway's read of
    // its certificate, with HTTPS: https.rs).
    let assignments = m.resources("azurerm_cosmosdb_sql_role_assignment");
    assert_eq!(assignments.len(), 2);
    for (name, a) in &assignments {
        assert_eq!(text(a, "principal_id"), "azurerm_user_assigned_identity.instances.principal_id");
        let (role, scope) = match *name {
            "data" => ("azurerm_cosmosdb_sql_role_definition.data.id", "local.container_scope"),
            "metadata" => ("azurerm_cosmosdb_sql_role_definition.metadata.id", "azurerm_cosmosdb_account.this.id"),
            other => panic!("unexpected role assignment {other}"),
        };
        assert_eq!((text(a, "role_definition_id").as_str(), text(a, "scope").as_str()), (role, scope));
    }
    for (name, a) in m.resources("azurerm_role_assignment") {
        assert_eq!(
            text(a, "principal_id"),
            "azurerm_user_assigned_identity.gateway[0].principal_id",
            "{name}: only the gateway's identity has an Azure RBAC role"
        );
    }
}

#[test]
fn cosmos_account_takes_no_keys_and_has_the_originals_layout() {
    let m = azure();
    let account = m.resource("azurerm_cosmosdb_account", "this");
    assert_eq!(bool_attr(account, "local_authentication_disabled"), Some(true));
    assert_eq!(bool_attr(account, "is_virtual_network_filter_enabled"), Some(true));
    assert_eq!(text(block(account, "virtual_network_rule"), "id"), "azurerm_subnet.app.id");
    assert_eq!(m.default_string("cosmos_database"), binary::default("cosmos_database"));
    assert_eq!(m.default_string("cosmos_container"), binary::default("cosmos_container"));
    let container = m.resource("azurerm_cosmosdb_sql_container", "candidates");
    assert_eq!(strings(attr(container, "partition_key_paths").unwrap()), ["/CandidateName"]);
    assert_eq!(m.default("cosmos_serverless").to_string(), "true");
}

#[test]
fn probes_and_ports_match_the_binary() {
    let m = azure();
    assert_eq!(m.default_number("http_port"), binary::default_port("http_addr"));
    assert_eq!(m.default_number("grpc_port"), binary::default_port("grpc_addr"));
    assert_eq!(m.default_string("health_check_path"), binary::health_path());

    let gw = m.resource("azurerm_application_gateway", "rest");
    let probe = block(gw, "probe");
    assert_eq!(text(probe, "path"), "var.health_check_path");
    assert_eq!(strings(attr(block(probe, "match"), "status_code").unwrap()), ["200"]);
    let settings = block(gw, "backend_http_settings");
    assert_eq!(text(settings, "port"), "var.http_port");
    assert_eq!(text(settings, "probe_name"), "local.gateway_probe");
    let draining = block(settings, "connection_draining");
    assert_eq!(bool_attr(draining, "enabled"), Some(true));
    assert_eq!(text(draining, "drain_timeout_sec"), "local.drain_timeout");
    assert_eq!(num_attr(block(gw, "frontend_port"), "port"), Some(80));

    let lb_probe = m.resource("azurerm_lb_probe", "gtg");
    assert_eq!(
        (text(lb_probe, "port"), text(lb_probe, "request_path")),
        ("var.http_port".into(), "var.health_check_path".into())
    );
    let rule = m.resource("azurerm_lb_rule", "grpc");
    assert_eq!(
        (text(rule, "frontend_port"), text(rule, "backend_port")),
        ("var.grpc_port".into(), "var.grpc_port".into())
    );
    assert_eq!(text(rule, "probe_id"), "azurerm_lb_probe.gtg.id");
    // The internal load balancer's frontend is a private address in the app subnet.
    let frontend = block(m.resource("azurerm_lb", "grpc"), "frontend_ip_configuration");
    assert_eq!(text(frontend, "subnet_id"), "azurerm_subnet.app.id");
    assert!(attr(frontend, "public_ip_address_id").is_none());

    // The scale set's own health view probes the same path and port.
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    let health = blocks(vmss, "extension")
        .into_iter()
        .find(|e| str_attr(e, "type").as_deref() == Some("ApplicationHealthLinux"))
        .expect("ApplicationHealthLinux extension");
    let settings = one_line(attr(health, "settings").unwrap());
    assert!(
        settings.contains("port = var.http_port") && settings.contains("requestPath = var.health_check_path"),
        "{settings}"
    );

    // Drain: the binary's timings, long enough for the probes, covered by the draining timeout and
    // the termination notice.
    let drain = m.default_number("drain_period_seconds");
    let grace = m.default_number("shutdown_grace_seconds");
    assert_eq!((drain, grace), (binary::default_secs("drain_period"), binary::default_secs("shutdown_grace")));
    assert_eq!(one_line(m.local("drain_timeout")), "var.drain_period_seconds + var.shutdown_grace_seconds");
    assert!(m.default_number("probe_interval") * m.default_number("probe_unhealthy_threshold") <= drain);
    let notice = block(vmss, "termination_notification");
    assert_eq!(bool_attr(notice, "enabled"), Some(true));
    let timeout = str_attr(notice, "timeout").unwrap();
    let minutes: i64 = timeout.trim_start_matches("PT").trim_end_matches('M').parse().expect("PT<n>M");
    assert!(minutes * 60 >= drain + grace, "{timeout}");
    m.store_env();
}

#[test]
fn env_file_configures_cosmos_with_the_binarys_own_variable_names() {
    let m = azure();
    let pairs = m.store_env();
    assert_eq!(pairs["CANDIDATES_STORE"], "\"cosmos\"");
    assert_eq!(pairs["CANDIDATES_INSTANCE_METADATA"], "\"azure\"");
    assert_eq!(pairs["COSMOS_ENDPOINT"], "azurerm_cosmosdb_account.this.endpoint");
    assert_eq!(pairs["COSMOS_DATABASE_NAME"], "azurerm_cosmosdb_sql_database.this.name");
    assert_eq!(pairs["COSMOS_CONTAINER_NAME"], "azurerm_cosmosdb_sql_container.candidates.name");
    assert!(!pairs.keys().any(|k| k.contains("KEY")), "no account key: the managed identity authenticates");
}

#[test]
fn instances_have_no_public_address_and_only_the_gateway_is_open_to_the_internet() {
    let m = azure();
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    for nic in blocks(vmss, "network_interface") {
        for ip in blocks(nic, "ip_configuration") {
            assert!(blocks(ip, "public_ip_address").is_empty(), "instances must not get public IPs");
            assert_eq!(text(ip, "subnet_id"), "azurerm_subnet.app.id");
        }
    }
    assert_eq!(bool_attr(vmss, "disable_password_authentication"), Some(true));
    // Public addresses: the gateway's frontend and the NAT gateway's egress, nothing else.
    let public: BTreeSet<&str> = m.resources("azurerm_public_ip").into_iter().map(|(n, _)| n).collect();
    assert_eq!(public, BTreeSet::from(["gateway", "nat"]));
    assert_eq!(text(m.resource("azurerm_subnet", "app"), "default_outbound_access_enabled"), "false");

    let http = m.default_number("http_port");
    let mut app_deny_all = false;
    for (name, rule) in m.resources("azurerm_network_security_rule") {
        if str_attr(rule, "direction").as_deref() != Some("Inbound") {
            continue;
        }
        let nsg = text(rule, "network_security_group_name");
        let sources = m.expand_attr(rule, "source_address_prefix") + &m.expand_attr(rule, "source_address_prefixes");
        let ports = m.expand_attr(rule, "destination_port_range") + &m.expand_attr(rule, "destination_port_ranges");
        if str_attr(rule, "access").as_deref() == Some("Deny") {
            app_deny_all |= nsg.contains("azurerm_network_security_group.app.")
                && sources.trim() == "\"*\""
                && ports.trim() == "\"*\""
                && num_attr(rule, "priority").unwrap() < 65000;
            continue;
        }
        if world_open(&sources) {
            assert!(
                nsg.contains("azurerm_network_security_group.gateway."),
                "{name}: open to the internet on the instances"
            );
            assert!(integers(&ports).is_subset(&BTreeSet::from([80, 443])) && !ports.contains('*'), "{name}: {ports}");
        }
        if nsg.contains("azurerm_network_security_group.app.")
            && (ports.contains("var.http_port") || integers(&ports).contains(&http))
        {
            let source = sources.lines().next().unwrap_or_default().to_owned();
            assert!(
                source == "var.gateway_subnet_cidr" || source == "\"AzureLoadBalancer\"",
                "{name}: port {http} from {source}"
            );
        }
    }
    assert!(app_deny_all, "the instances' NSG must end with a deny-all rule ahead of Azure's AllowVnetInBound");
    assert_eq!(
        one_line(m.local("grpc_client_cidrs")),
        "length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.vnet_cidr]"
    );
}

#[test]
fn scale_set_rolls_repairs_and_autoscales_without_flapping() {
    let m = azure();
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    assert_eq!(str_attr(vmss, "upgrade_mode").as_deref(), Some("Rolling"));
    assert_eq!(bool_attr(block(vmss, "automatic_instance_repair"), "enabled"), Some(true));
    assert_eq!(text(vmss, "zones"), "var.zones");
    assert_eq!(
        (m.default_number("instances_min"), m.default_number("instances_default"), m.default_number("instances_max")),
        (3, 3, 5)
    );
    let (out, inn) = (m.default_number("scale_out_cpu"), m.default_number("scale_in_cpu"));
    assert_eq!(out, 60);
    assert!(inn * 2 <= out, "scale-in {inn}% vs scale-out {out}%");
    let profile = block(m.resource("azurerm_monitor_autoscale_setting", "this"), "profile");
    let rules: Vec<(String, String, String)> = blocks(profile, "rule")
        .into_iter()
        .map(|r| {
            let trigger = block(r, "metric_trigger");
            (
                str_attr(trigger, "operator").unwrap(),
                text(trigger, "threshold"),
                str_attr(block(r, "scale_action"), "direction").unwrap(),
            )
        })
        .collect();
    // Requests per healthy host out (the demo's signal, rules.rs checks its threshold), CPU out as
    // the backstop, CPU alone in (scale_in_rules_use_a_metric_defined_at_zero_traffic).
    assert_eq!(
        rules,
        [
            ("GreaterThan".into(), "local.requests_per_host_per_minute".into(), "Increase".into()),
            ("GreaterThan".into(), "var.scale_out_cpu".into(), "Increase".into()),
            ("LessThan".into(), "var.scale_in_cpu".into(), "Decrease".into())
        ]
    );
}

/// A scale set's system-assigned identity exists only once the scale set does, so role assignments
/// on its principal_id are created after the first VMs booted (and their service got 403). The
/// instances use a user-assigned identity instead, whose Cosmos DB role assignments the scale set
/// waits for. It must be the only identity: IMDS, asked for a token without a client id (the
/// server's `ManagedIdentityCredential::new(None)`; azure_identity 1.0 reads no AZURE_CLIENT_ID,
/// Azure/azure-sdk-for-rust#2578), answers with the system-assigned identity when there is one,
/// and with the single user-assigned one when there is no system-assigned identity (Microsoft
/// Entra, "Managed identities for Azure resources frequently asked questions": "What identity
/// will IMDS default to if I don't specify the identity in the request?").
#[test]
fn instances_identity_is_user_assigned_and_granted_before_the_scale_set() {
    let m = azure();
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    let identity = block(vmss, "identity");
    assert_eq!(
        str_attr(identity, "type").as_deref(),
        Some("UserAssigned"),
        "no system-assigned identity beside it (IMDS would default to that one)"
    );
    assert_eq!(text(identity, "identity_ids"), "[azurerm_user_assigned_identity.instances.id]", "exactly one");
    // The only other identity is the gateway's (with HTTPS), which no VM carries.
    let identities: BTreeSet<&str> =
        m.resources("azurerm_user_assigned_identity").into_iter().map(|(n, _)| n).collect();
    assert_eq!(identities, BTreeSet::from(["gateway", "instances"]));
    for vm in [
        m.resource("azurerm_linux_virtual_machine_scale_set", "this"),
        m.resource("azurerm_linux_virtual_machine", "validation"),
    ] {
        for identity in blocks(vm, "identity") {
            assert!(
                !text(identity, "identity_ids").contains("user_assigned_identity.gateway"),
                "a VM has the gateway's identity"
            );
        }
    }

    let depends_on = text(vmss, "depends_on");
    for (name, a) in m.resources("azurerm_cosmosdb_sql_role_assignment") {
        assert_eq!(text(a, "principal_id"), "azurerm_user_assigned_identity.instances.principal_id", "{name}");
        assert!(
            depends_on.contains(&format!("azurerm_cosmosdb_sql_role_assignment.{name}")),
            "the scale set must wait for role assignment {name}: depends_on = {depends_on}"
        );
    }
    // The service authenticates as that identity by name (server flag --cosmos-identity-client-id).
    assert!(
        m.expressions().iter().any(|e| e.contains("CANDIDATES_COSMOS_IDENTITY_CLIENT_ID")
            && e.contains("azurerm_user_assigned_identity.instances.client_id")),
        "the instances must be told the identity's client id"
    );
    // Nothing may read the scale set's own principal any more.
    assert!(
        m.expressions().iter().all(|e| !e.contains("azurerm_linux_virtual_machine_scale_set.this.identity")),
        "a reference to the scale set's (system-assigned) identity is left"
    );
}

/// A stand-in for `az` on PATH: `vmss run-command invoke ... --scripts S` runs S with bash here
/// and answers as Run Command does, keeping only the last 4,096 bytes of each stream ("Run
/// scripts in your Linux VM by using action Run Commands": "the output is limited to the last
/// 4,096 bytes"); every other subcommand (login, account set) succeeds silently.
const FAKE_AZ: &str = r#"#!/usr/bin/env bash
[[ -n ${AZ_LOG:-} ]] && echo "${AZURE_CONFIG_DIR:-unset} $1 $2" >>"$AZ_LOG"
[[ $1 == vmss && $2 == run-command ]] || exit 0
while (($#)); do
  if [[ $1 == --scripts ]]; then script=$2; fi
  shift
done
dir=$(mktemp -d)
bash -c "$script" >"$dir/out" 2>"$dir/err"
printf 'Enable succeeded: \n[stdout]\n%s\n[stderr]\n%s\n' "$(tail -c 4096 "$dir/out")" "$(tail -c 4096 "$dir/err")"
rm -rf "$dir"
"#;

/// Runs `body` in bash after sourcing scripts/azure/env.sh, with the fake `az` first on PATH;
/// returns (status, stdout, stderr).
fn with_fake_az(body: &str) -> (i32, String, String) {
    with_fake_az_env(body, &[])
}

fn with_fake_az_env(body: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let az = bin.path().join("az");
    std::fs::write(&az, FAKE_AZ).unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = crate::infra::repo_root();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap());
    let script = format!("set -euo pipefail\nsource {}/scripts/azure/env.sh\n{body}", root.display());
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Run Command returns only the last 4,096 bytes of output; calibrate-instance.sh's one-line JSON
/// report is longer (~6 KB with a 60-row timeline), so the transport calibrate.sh hands to
/// lib.sh, vmss_run, must bring back the whole standard output however long.
#[test]
fn calibration_report_survives_run_commands_4_kib_output_limit() {
    let calibrate = std::fs::read_to_string(crate::infra::repo_root().join("scripts/azure/calibrate.sh")).unwrap();
    assert!(calibrate.contains(" vmss_run \"$rg\""), "calibrate.sh's transport is vmss_run:\n{calibrate}");

    // An incompressible 8,000-character line (several pieces) and a last line, as the report and
    // the calibration line; stderr and a failing status come back too.
    let script = r#"head -c 6000 /dev/urandom | base64 -w0 > /tmp/cand-expected-$$
cat /tmp/cand-expected-$$; echo; echo "calibration: cpu_ticks=1"; echo "a warning" >&2; rm /tmp/cand-expected-$$; exit 3"#;
    let body = format!(
        "set +e\nout=$(vmss_run rg vmss 0 <<'SCRIPT'\n{script}\nSCRIPT\n)\nstatus=$?\n\
         printf '%s\\n' \"$out\"\necho \"status=$status\"\n\
         old=$(vmss_run_tail rg vmss 0 <<'SCRIPT'\n{script}\nSCRIPT\n)\necho \"old-bytes=${{#old}}\""
    );
    let (status, stdout, stderr) = with_fake_az(&body);
    assert_eq!(status, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}\n{stderr}");
    assert_eq!(lines[0].len(), 8000, "the long line comes back whole");
    assert_eq!(lines[1], "calibration: cpu_ticks=1");
    assert_eq!(lines[2], "status=3", "the script's status");
    assert!(stderr.contains("a warning"), "{stderr}");
    // And Run Command's own answer (the old vmss_run) does lose it.
    let old: usize = lines[3].trim_start_matches("old-bytes=").parse().unwrap();
    assert!(old < 4200, "the fake must cut like Run Command: {old}");
}

/// Terraform's tls_private_key keeps the private key unencrypted in the state ("Sensitive Data in
/// State"; the tls provider's own docs advise against it for production): the admin key is the
/// operator's public key, required, and nothing generates one.
#[test]
fn no_private_key_in_the_state_the_admin_key_is_the_operators() {
    let m = azure();
    assert!(m.all_resources().iter().all(|(ty, _, _)| !ty.starts_with("tls_")), "a generated key pair");
    let (_, var) = m.variables().into_iter().find(|(n, _)| *n == "admin_ssh_public_key").expect("the variable");
    assert!(attr(var, "default").is_none(), "admin_ssh_public_key must be required (no default)");
    assert!(!blocks(var, "validation").is_empty(), "and checked to be a public key line");
    let keys: Vec<String> = [
        m.resource("azurerm_linux_virtual_machine_scale_set", "this"),
        m.resource("azurerm_linux_virtual_machine", "validation"),
    ]
    .iter()
    .map(|r| text(block(r, "admin_ssh_key"), "public_key"))
    .collect();
    assert_eq!(keys, ["trimspace(var.admin_ssh_public_key)"; 2]);
    let root = crate::infra::repo_root();
    let versions = std::fs::read_to_string(root.join("terraform/azure/versions.tf")).unwrap();
    assert!(!versions.contains("hashicorp/tls"), "the tls provider is no longer needed");
    for script in ["apply.sh", "destroy.sh"] {
        let text = std::fs::read_to_string(root.join("scripts/azure").join(script)).unwrap();
        assert!(text.contains("\nadd_admin_key_var\n"), "{script} must pass the operator's key");
    }
    let (status, _, stderr) = with_fake_az_env(
        "add_admin_key_var; printf '%s\\n' \"${TF_VARS[@]}\"",
        &[("HOME", "/nonexistent"), ("ADMIN_SSH_PUBLIC_KEY", "")],
    );
    assert_ne!(status, 0, "no key anywhere must stop the script");
    assert!(stderr.contains("ssh-keygen"), "{stderr}");
}

/// `az login --service-principal` replaces the CLI's signed-in account in its configuration
/// directory (AZURE_CONFIG_DIR, default ~/.azure: "Azure CLI configuration"); the scripts log in
/// in a directory of their own, exported so Packer's use_azure_cli_auth sees the same login.
#[test]
fn scripts_log_the_service_principal_in_outside_the_operators_az_config() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("az.log");
    let (status, stdout, stderr) = with_fake_az_env(
        "check_azure; echo \"dir=$AZURE_CONFIG_DIR\"; bash -c 'echo \"child=$AZURE_CONFIG_DIR\"'",
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("XDG_CONFIG_HOME", ""),
            ("CANDIDATES_AZURE_CONFIG_DIR", ""),
            ("AZ_LOG", log.to_str().unwrap()),
            ("ARM_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("ARM_CLIENT_SECRET", "secret"),
            ("ARM_TENANT_ID", "tenant"),
            ("ARM_SUBSCRIPTION_ID", "subscription"),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let own = home.path().join(".config/candidates/az-11111111-2222-3333-4444-555555555555");
    assert!(stdout.contains(&format!("dir={}", own.display())), "{stdout}");
    assert!(stdout.contains(&format!("child={}", own.display())), "exported for Packer: {stdout}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let login = calls.lines().find(|l| l.ends_with(" login --service-principal")).expect(&calls);
    assert!(login.starts_with(&own.display().to_string()), "az login ran with AZURE_CONFIG_DIR {login}");
    assert!(!home.path().join(".azure").exists());
}

/// The scheduled-events approval is a JSON body (`{"StartRequests": [...]}`) and must say so:
/// Python's urllib otherwise labels a POST body application/x-www-form-urlencoded.
#[test]
fn drain_watcher_posts_its_approval_as_json() {
    let script =
        std::fs::read_to_string(crate::infra::repo_root().join("terraform/azure/files/scheduled-events-drain.py"))
            .unwrap();
    let imds = script.split("def imds(").nth(1).expect("def imds").split("\ndef ").next().unwrap();
    assert!(
        imds.contains(r#"headers["Content-Type"] = "application/json""#),
        "the POST must carry Content-Type: application/json:\n{imds}"
    );
    assert!(script.contains("imds(EVENTS, json.dumps(approval).encode())"), "the approval goes through imds()");
}

/// Azure autoscale scales in only when every scale-in rule holds ("Understand autoscale settings":
/// "scale-in ... only if all the scale-in rules are met"), and a rule over a metric with no
/// datapoints in its window does not hold. The Application Gateway's request metrics
/// (AvgRequestCountPerHealthyHost) may emit nothing at zero traffic, which would block scale-in
/// exactly when the set is idle; the VM's Percentage CPU has a value every minute. So every
/// scale-in rule is on the scale set's CPU.
#[test]
fn scale_in_rules_use_a_metric_defined_at_zero_traffic() {
    let m = azure();
    let profile = block(m.resource("azurerm_monitor_autoscale_setting", "this"), "profile");
    let decreases: Vec<(String, String)> = blocks(profile, "rule")
        .into_iter()
        .filter(|r| str_attr(block(r, "scale_action"), "direction").as_deref() == Some("Decrease"))
        .map(|r| {
            let t = block(r, "metric_trigger");
            (str_attr(t, "metric_name").unwrap(), text(t, "metric_resource_id"))
        })
        .collect();
    assert!(!decreases.is_empty(), "no scale-in rule");
    for (metric, resource) in decreases {
        assert_eq!(
            (metric.as_str(), resource.as_str()),
            ("Percentage CPU", "azurerm_linux_virtual_machine_scale_set.this.id"),
            "a scale-in rule on a metric that may have no datapoints at zero traffic"
        );
    }
}

/// MaxSurge is a preview (off unless rolling_upgrade_max_surge), and with it Azure still falls
/// back to in-place batches when a batch's quota check fails ("Rolling upgrades with MaxSurge on
/// Virtual Machine Scale Sets"). In place, a batch is out of service while it is upgraded, so the
/// batch is one instance and the set keeps at least 2 serving: instances_min >= 3, checked by a
/// validation and a precondition; and no comment may promise a surge.
#[test]
fn rolling_upgrades_keep_two_instances_serving_without_surge() {
    let m = azure();
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    let policy = block(vmss, "rolling_upgrade_policy");
    assert_eq!(text(policy, "max_batch_instance_percent"), "local.rolling_batch_percent");
    let percent = number(m.local("rolling_batch_percent")).expect("a literal percent");
    let (min, max) = (m.default_number("instances_min"), m.default_number("instances_max"));
    let batch = std::cmp::max(1, (max * percent + 99) / 100);
    assert_eq!(batch, 1, "batches of one at the default instances_max {max}");
    assert!(min - batch >= 2, "instances_min {min} leaves {} serving during a batch", min - batch);
    assert_eq!(
        one_line(m.local("rolling_batch_size")),
        "max(1, ceil(var.instances_max * local.rolling_batch_percent / 100))"
    );
    let preconditions: Vec<String> =
        blocks(block(vmss, "lifecycle"), "precondition").into_iter().map(|p| text(p, "condition")).collect();
    assert!(
        preconditions.contains(&"var.instances_min - local.rolling_batch_size >= 2".to_owned()),
        "{preconditions:?}"
    );
    let (_, var) = m.variables().into_iter().find(|(n, _)| *n == "instances_min").unwrap();
    assert_eq!(text(block(var, "validation"), "condition"), "var.instances_min >= 3");
    let compute = std::fs::read_to_string(crate::infra::repo_root().join("terraform/azure/compute.tf")).unwrap();
    assert!(!compute.contains("new instances first (surge)"), "the comment must not promise a surge");
}

/// azure-arm's allowed_inbound_ip_addresses: when empty, the plugin's temporary NSG admits SSH
/// from anywhere (Packer's azure-arm builder docs, allowed_inbound_ip_addresses). So the variable
/// can never be empty or open to all: its default admits nobody (TEST-NET-1) and its validation
/// refuses an empty list, 0.0.0.0 and ranges wider than /8. (A variable without a default would be
/// required by the AWS and GCP builds of the same template too: Packer refuses any unset variable.)
#[test]
fn packer_azure_build_vm_ssh_is_never_open_to_all() {
    let template = std::fs::read_to_string(crate::infra::repo_root().join("packer/candidates.pkr.hcl")).unwrap();
    let body = hcl::parse(&template).unwrap();
    let var = body
        .blocks()
        .find(|b| b.identifier() == "variable" && b.labels()[0].as_str() == "azure_allowed_inbound_ip_addresses")
        .expect("the variable")
        .body();
    let default = strings(attr(var, "default").expect("a default that admits nobody"));
    assert_eq!(default, ["192.0.2.1"], "not empty (the plugin opens SSH to all) and nobody's address");
    assert!(!world_open(&format!("{default:?}")));
    let condition = text(block(var, "validation"), "condition");
    assert!(condition.starts_with("length(var.azure_allowed_inbound_ip_addresses) > 0 &&"), "{condition}");
    assert!(condition.contains(r#"a != "0.0.0.0""#) && condition.contains("([89]|[12][0-9]|3[0-2])"), "{condition}");
}

/// The stack assigns no Azure RBAC role by default, only Cosmos DB data-plane ones, whose
/// sqlRoleAssignments/write action Contributor has; so the deploy doc asks for Contributor alone,
/// not User Access Administrator. The one Azure RBAC role assignment is optional: HTTPS with a
/// certificate in an RBAC Key Vault (the gateway reads its secret), and the doc's HTTPS section
/// says what it takes (Microsoft.Authorization/roleAssignments/write on the vault).
#[test]
fn deploy_doc_asks_for_contributor_only() {
    let doc = std::fs::read_to_string(crate::infra::repo_root().join("docs/deploy-azure.md")).unwrap();
    let prerequisites = doc.split("## Prerequisites").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(prerequisites.contains("Contributor"), "{prerequisites}");
    assert!(
        !prerequisites.contains("User Access Administrator is needed")
            && !prerequisites.contains("and User Access Administrator or"),
        "the prerequisites ask for User Access Administrator"
    );
    let m = azure();
    for (name, a) in m.resources("azurerm_role_assignment") {
        let count = text(a, "count");
        assert!(
            count.starts_with("local.https_enabled && var.tls_key_vault_authorization == \"rbac\""),
            "{name}: a role assignment without HTTPS: count = {count}"
        );
    }
    let https = doc.split("## HTTPS").nth(1).expect("docs/deploy-azure.md has an HTTPS section");
    assert!(https.contains("roleAssignments/write"), "the HTTPS section names what the RBAC grant needs");
}
