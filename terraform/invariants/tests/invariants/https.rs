//! Issue 27: HTTPS at the public load balancers of Azure and GCP when a domain and a certificate are
//! given, with port 80 redirected; without them, the load balancers as before. AWS has had it since
//! the ALB (aws.rs). Each rule below names the provider documentation it rests on:
//! - azurerm `application_gateway` (terraform-provider-azurerm website/docs/r/
//!   application_gateway.html.markdown) and its expand functions' errors;
//! - google `compute_url_map`, `compute_target_https_proxy`, `compute_ssl_policy`,
//!   `compute_managed_ssl_certificate`, `compute_global_forwarding_rule` (terraform-provider-google
//!   website/docs/r/);
//! - Microsoft's "TLS termination with Key Vault certificates" and "Application Gateway TLS policy
//!   overview"; Google's "Use Google-managed SSL certificates".
//!
//! The roots are read with hcl-rs, not planned (no providers here): `Plan` evaluates what the
//! HTTPS switch decides (counts, dynamic blocks, `local.https_enabled ? a : b`) and leaves the
//! rest as text. The variables' validations run in the real Terraform, in a throwaway module of
//! the variable blocks alone (no provider needed).

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use hcl::{Body, Expression};

use crate::infra::{Module, attr, bool_attr, one_line, repo_root, str_attr, strings};

/// A root under one setting of the HTTPS variables, simplified: `atoms` gives the truth of each
/// condition the module branches on (`local.https_enabled`, `var.x == "y"`); conditionals on them
/// pick their branch, `local.NAME` is replaced by its expression, and everything else is kept.
struct Plan<'a> {
    m: &'a Module,
    atoms: BTreeMap<&'static str, bool>,
}

impl<'a> Plan<'a> {
    fn new(m: &'a Module, atoms: &[(&'static str, bool)]) -> Self {
        Plan { m, atoms: atoms.iter().copied().collect() }
    }

    /// The condition's truth when every `&&` term of it is an atom given; None otherwise (the
    /// conditional is then left as it is: `length(var.x) == 0 ? a : b` does not depend on HTTPS).
    fn truth(&self, cond: &Expression) -> Option<bool> {
        let mut all = true;
        for atom in one_line(cond).split(" && ") {
            all &= *self.atoms.get(atom.trim())?;
        }
        Some(all)
    }

    fn eval(&self, expr: &Expression) -> Expression {
        match expr {
            Expression::Conditional(c) => match self.truth(&c.cond_expr) {
                Some(true) => self.eval(&c.true_expr),
                Some(false) => self.eval(&c.false_expr),
                None => expr.clone(),
            },
            Expression::Parenthesis(inner) => self.eval(inner),
            other => {
                let text = one_line(other);
                let local = text
                    .strip_prefix("local.")
                    .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .and_then(|n| self.m.local_opt(n));
                match local {
                    Some(e) => self.eval(e),
                    None => other.clone(),
                }
            }
        }
    }

    /// An attribute's evaluated text ("" when absent).
    fn text(&self, body: &Body, key: &str) -> String {
        attr(body, key).map(|e| one_line(&self.eval(e))).unwrap_or_default()
    }

    /// A literal string attribute after evaluation.
    fn string(&self, body: &Body, key: &str) -> Option<String> {
        match attr(body, key).map(|e| self.eval(e)) {
            Some(Expression::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether a resource exists (its `count` is not 0).
    fn exists(&self, body: &Body) -> bool {
        match attr(body, "count").map(|c| self.eval(c)) {
            None => true,
            Some(Expression::Number(n)) => n.as_i64() != Some(0),
            Some(other) => panic!("{}: count {other} does not evaluate to a number", self.m.name),
        }
    }

    fn resources(&self, ty: &str) -> Vec<(&'a str, &'a Body)> {
        self.m.resources(ty).into_iter().filter(|(_, b)| self.exists(b)).collect()
    }

    fn resource(&self, ty: &str, name: &str) -> Option<&'a Body> {
        self.resources(ty).into_iter().find(|(n, _)| *n == name).map(|(_, b)| b)
    }

    /// The nested blocks `ident`: the literal ones, and the content of every `dynamic "ident"`
    /// whose for_each evaluates to a non-empty list.
    fn blocks<'b>(&self, body: &'b Body, ident: &str) -> Vec<&'b Body> {
        let mut out = Vec::new();
        for block in body.blocks() {
            if block.identifier() == ident {
                out.push(block.body());
            } else if block.identifier() == "dynamic" && block.labels()[0].as_str() == ident {
                let for_each = attr(block.body(), "for_each").expect("dynamic block without for_each");
                let items = match self.eval(for_each) {
                    Expression::Array(items) => items.len(),
                    other => panic!("{}: dynamic {ident}: for_each {other} is not a list", self.m.name),
                };
                let content = block.body().blocks().find(|b| b.identifier() == "content").expect("content").body();
                out.extend(std::iter::repeat_n(content, items));
            }
        }
        out
    }

    fn named<'b>(&self, body: &'b Body, ident: &str) -> BTreeMap<String, &'b Body> {
        let mut out = BTreeMap::new();
        for b in self.blocks(body, ident) {
            let name = self.string(b, "name").unwrap_or_else(|| panic!("{ident} without a literal name"));
            assert!(out.insert(name.clone(), b).is_none(), "{}: two {ident} blocks named {name}", self.m.name);
        }
        out
    }
}

/// The label of a resource's one `provisioner` block (local-exec, remote-exec, file).
fn provisioner_kind(resource: &Body) -> String {
    let provisioners: Vec<_> = resource.blocks().filter(|b| b.identifier() == "provisioner").collect();
    assert_eq!(provisioners.len(), 1);
    provisioners[0].labels()[0].as_str().to_owned()
}

/// `TYPE.NAME` of a reference such as `google_compute_url_map.rest.id` or `x.y[0].id`.
fn referenced(text: &str) -> (String, String) {
    let mut parts = text.split('.');
    let ty = parts.next().unwrap_or_default().to_owned();
    let name = parts.next().unwrap_or_default().split('[').next().unwrap_or_default().to_owned();
    (ty, name)
}

// --- GCP -----------------------------------------------------------------------------------------

fn gcp_plans(m: &Module) -> [(bool, Plan<'_>); 2] {
    [(false, Plan::new(m, &[("local.https_enabled", false)])), (true, Plan::new(m, &[("local.https_enabled", true)]))]
}

/// google_compute_url_map default_url_redirect: "If defaultUrlRedirect is specified, defaultService
/// or defaultRouteAction must not be set"; https_redirect "must only be set for UrlMaps used in
/// TargetHttpProxys. Setting this true for TargetHttpsProxy is not permitted"; strip_query is
/// required. With domains, port 80's proxy serves a map that redirects every request to HTTPS
/// (301, query kept) and reaches no backend; without, the backend's map, as before.
#[test]
fn gcp_port_80_redirects_to_https_when_domains_are_given_and_forwards_as_before_otherwise() {
    let m = Module::load("gcp");
    assert_eq!(one_line(m.local("https_enabled")), "length(var.domains) > 0");
    assert_eq!(one_line(m.default("domains")), "[]");
    for (https, plan) in gcp_plans(&m) {
        let proxy = plan.resource("google_compute_target_http_proxy", "rest").expect("the port 80 proxy");
        let (ty, map_name) = referenced(&plan.text(proxy, "url_map"));
        assert_eq!(ty, "google_compute_url_map");
        let map = plan.resource(&ty, &map_name).unwrap_or_else(|| panic!("https={https}: {map_name} does not exist"));
        let redirects = plan.blocks(map, "default_url_redirect");
        if https {
            assert_eq!(redirects.len(), 1, "port 80 must redirect");
            let r = redirects[0];
            assert_eq!(plan.text(r, "https_redirect"), "true");
            assert_eq!(plan.string(r, "redirect_response_code").as_deref(), Some("MOVED_PERMANENTLY_DEFAULT"));
            assert_eq!(plan.text(r, "strip_query"), "false", "the query is part of the request");
            for key in ["host_redirect", "path_redirect", "prefix_redirect"] {
                assert!(attr(r, key).is_none(), "{key}: the same host and path, only the scheme changes");
            }
            for key in ["default_service", "default_route_action", "host_rule", "path_matcher"] {
                assert!(
                    attr(map, key).is_none() && plan.blocks(map, key).is_empty(),
                    "the redirect map must not reach a backend ({key})"
                );
            }
        } else {
            assert!(redirects.is_empty());
            assert_eq!(map_name, "rest", "without domains port 80 serves the backend as before");
            assert_eq!(plan.text(map, "default_service"), "google_compute_backend_service.rest.id");
            for ty in [
                "google_compute_target_https_proxy",
                "google_compute_managed_ssl_certificate",
                "google_compute_ssl_policy",
            ] {
                assert!(plan.resources(ty).is_empty(), "{ty} without domains");
            }
        }
        // A map that redirects to HTTPS is never behind an HTTPS proxy.
        for (_, https_proxy) in plan.resources("google_compute_target_https_proxy") {
            let (_, name) = referenced(&plan.text(https_proxy, "url_map"));
            let target = plan.resource("google_compute_url_map", &name).unwrap();
            assert!(
                plan.blocks(target, "default_url_redirect").iter().all(|r| plan.text(r, "https_redirect") != "true"),
                "https_redirect on a map behind a target HTTPS proxy"
            );
        }
    }
}

/// google_compute_global_forwarding_rule: "two or more forwarding rules cannot use the same
/// [IPAddress, IPProtocol] pair, and cannot have overlapping portRanges"; the scheme of a
/// forwarding rule of an Application Load Balancer is the backend service's (EXTERNAL_MANAGED).
/// google_compute_target_https_proxy: at most 15 ssl_certificates, not together with
/// certificate_manager_certificates; without ssl_policy "the TargetHttpsProxy resource will not
/// have any SSL policy configured" (TLS 1.0 accepted).
#[test]
fn gcp_https_is_a_second_forwarding_rule_on_443_of_the_same_address() {
    let m = Module::load("gcp");
    let backend_scheme = str_attr(m.resource("google_compute_backend_service", "rest"), "load_balancing_scheme");
    for (https, plan) in gcp_plans(&m) {
        let rules = plan.resources("google_compute_global_forwarding_rule");
        let mut ports = BTreeMap::new();
        for (name, rule) in &rules {
            assert_eq!(str_attr(rule, "load_balancing_scheme"), backend_scheme, "{name}");
            assert_eq!(plan.text(rule, "ip_address"), "google_compute_global_address.rest.id", "{name}");
            let port = plan.string(rule, "port_range").unwrap();
            assert!(ports.insert(port.clone(), *name).is_none(), "two rules on port {port} of one address");
        }
        let expected: BTreeSet<&str> = if https { BTreeSet::from(["80", "443"]) } else { BTreeSet::from(["80"]) };
        assert_eq!(ports.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected, "https={https}");
        if !https {
            continue;
        }
        let rule = plan.resource("google_compute_global_forwarding_rule", ports["443"]).unwrap();
        let (ty, proxy_name) = referenced(&plan.text(rule, "target"));
        assert_eq!(ty, "google_compute_target_https_proxy", "443 ends TLS");
        let proxy = plan.resource(&ty, &proxy_name).unwrap();
        assert_eq!(plan.text(proxy, "url_map"), "google_compute_url_map.rest.id", "443 serves the backend");
        let certs = match attr(proxy, "ssl_certificates").map(|e| plan.eval(e)) {
            Some(Expression::Array(items)) => items.iter().map(one_line).collect::<Vec<_>>(),
            other => panic!("ssl_certificates: {other:?}"),
        };
        assert!((1..=15).contains(&certs.len()), "{certs:?}");
        assert!(attr(proxy, "certificate_manager_certificates").is_none());
        for cert in certs {
            let (ty, name) = referenced(&cert);
            assert_eq!(ty, "google_compute_managed_ssl_certificate", "{cert}");
            assert!(plan.resource(&ty, &name).is_some(), "{cert} does not exist with domains");
        }
        let (ty, policy) = referenced(&plan.text(proxy, "ssl_policy"));
        assert_eq!(ty, "google_compute_ssl_policy", "an HTTPS proxy without an SSL policy accepts TLS 1.0");
        assert!(plan.resource(&ty, &policy).is_some());
    }
}

/// google_compute_ssl_policy: min_tls_version defaults to TLS_1_0; "When set to TLS_1_3, the
/// profile field must be set to RESTRICTED"; custom_features must be set for CUSTOM and only for
/// CUSTOM. Every policy here allows TLS 1.2 and later only.
#[test]
fn gcp_tls_policies_allow_tls_1_2_or_later_only() {
    let m = Module::load("gcp");
    let policies = m.resources("google_compute_ssl_policy");
    assert!(!policies.is_empty());
    for (name, policy) in policies {
        let min = str_attr(policy, "min_tls_version").unwrap_or_else(|| "TLS_1_0".into());
        assert!(["TLS_1_2", "TLS_1_3"].contains(&min.as_str()), "{name}: min_tls_version {min}");
        let profile = str_attr(policy, "profile").unwrap_or_else(|| "COMPATIBLE".into());
        assert!(["MODERN", "RESTRICTED", "CUSTOM", "FIPS_202205"].contains(&profile.as_str()), "{name}: {profile}");
        if min == "TLS_1_3" {
            assert_eq!(profile, "RESTRICTED", "{name}: TLS_1_3 needs RESTRICTED");
        }
        assert_eq!(attr(policy, "custom_features").is_some(), profile == "CUSTOM", "{name}: custom_features");
    }
    for (name, proxy) in m.resources("google_compute_target_https_proxy") {
        assert!(attr(proxy, "ssl_policy").is_some(), "{name}: no SSL policy (TLS 1.0)");
    }
}

/// google_compute_managed_ssl_certificate: managed.domains is ForceNew, so a new list replaces the
/// certificate; the target proxy still holds the old one, so it must be created before the old one
/// is destroyed (the provider's "Managed Ssl Certificate Recreation" example), under a name of its
/// own: the provider has no name_prefix, and an omitted name is refused by the API ("Invalid value
/// for field 'resource.name'", hashicorp/terraform-provider-google#23086). Names: 1-63 characters,
/// [a-z]([-a-z0-9]*[a-z0-9])?.
///
/// The same name also means `terraform apply -replace` of the certificate collides with itself
/// (the replacement is created first), yet the API's status docs say of a certificate in
/// PROVISIONING_FAILED_PERMANENTLY ("It won't be retried") or RENEWAL_FAILED: "delete and create a
/// new managed SslCertificate resource". var.certificate_revision gives the replacement a name of
/// its own (name is ForceNew, so a new revision replaces the certificate, created first).
#[test]
fn gcp_managed_certificate_is_replaced_before_it_is_destroyed_under_a_name_of_its_domains() {
    let m = Module::load("gcp");
    let certs = m.resources("google_compute_managed_ssl_certificate");
    assert_eq!(certs.len(), 1);
    let (_, cert) = certs[0];
    let lifecycle = crate::infra::block(cert, "lifecycle");
    assert_eq!(bool_attr(lifecycle, "create_before_destroy"), Some(true));
    let managed = crate::infra::block(cert, "managed");
    assert_eq!(one_line(attr(managed, "domains").unwrap()), "var.domains");
    let name = one_line(attr(cert, "name").expect("a name (the API refuses none)"));
    assert_eq!(
        name,
        "\"${var.name}-${substr(sha256(jsonencode(var.domains)), 0, 16)}${var.certificate_revision == 0 ? \"\" : \"-${var.certificate_revision}\"}\"",
        "changes with the domains, and with the revision"
    );
    // var.name: 2-21 of [a-z0-9-] starting with a letter (its validation); then "-" and 16 hex
    // digits, and "-" and at most 4 digits (certificate_revision's validation): the name ends with
    // a letter or digit.
    let var_name = crate::infra::text(crate::infra::block(m.variable("name"), "validation"), "condition");
    assert!(var_name.contains("^[a-z][a-z0-9-]{1,20}$"), "{var_name}");
    let longest = format!("{}-{}-{}", "a".repeat(21), "f".repeat(16), 9999);
    assert!(longest.len() <= 63, "{longest}: over 63 characters");
    assert_eq!(one_line(m.default("certificate_revision")), "0", "revision 0 keeps the name of the domains alone");

    // The revision, in Terraform itself: whole numbers 0-9999, and each one a name of its own.
    let Some(tf) = ThrowawayModule::new(&format!(
        "{}\noutput \"cert\" {{\n  value = {}\n}}\n",
        m.variables_hcl(&["name", "domains", "certificate_revision"]),
        name
    )) else {
        return;
    };
    for (value, ok) in [("0", true), ("1", true), ("9999", true), ("-1", false), ("1.5", false), ("10000", false)] {
        let (accepted, err) = tf.accepts(&[("certificate_revision", value)]);
        assert_eq!(accepted, ok, "certificate_revision = {value}: {err}");
    }
    let domains = r#"["api.example.com"]"#;
    let names: Vec<String> = ["0", "1", "2"]
        .into_iter()
        .map(|r| tf.output("cert", &[("domains", domains), ("certificate_revision", r)]))
        .collect();
    let digest = &names[0]["candidates-".len()..];
    assert!(digest.len() == 16 && digest.chars().all(|c| c.is_ascii_hexdigit()), "{names:?}");
    assert_eq!(names[1], format!("{}-1", names[0]), "{names:?}");
    assert_eq!(names[2], format!("{}-2", names[0]), "{names:?}");
}

/// Google-managed certificates: "up to 100 domains", no wildcard domains; each entry is a host
/// name. The variable refuses the rest before any API call.
#[test]
fn gcp_domains_are_validated_before_apply() {
    let m = Module::load("gcp");
    let many: Vec<String> = (0..101).map(|i| format!("\"h{i}.example.com\"")).collect();
    let many = format!("[{}]", many.join(","));
    // (what, value, accepted, what the refusal says)
    let cases: Vec<(&str, &str, bool, &str)> = vec![
        ("none", "[]", true, ""),
        ("one", r#"["api.example.com"]"#, true, ""),
        ("two", r#"["api.example.com","api.example.org"]"#, true, ""),
        ("a URL", r#"["https://api.example.com"]"#, false, "not URLs"),
        ("a path", r#"["api.example.com/v1"]"#, false, "not URLs"),
        ("a wildcard", r#"["*.example.com"]"#, false, "wildcard"),
        ("upper case", r#"["API.example.com"]"#, false, "lower case"),
        ("a trailing dot", r#"["api.example.com."]"#, false, "trailing dot"),
        ("a bare label", r#"["localhost"]"#, false, "fully qualified"),
        ("a duplicate", r#"["api.example.com","api.example.com"]"#, false, "twice"),
        ("101 names", &many, false, "at most 100"),
    ];
    let Some(tf) = ThrowawayModule::new(&m.variables_hcl(&["domains"])) else { return };
    for (what, value, ok, says) in cases {
        let (accepted, err) = tf.accepts(&[("domains", value)]);
        assert_eq!(accepted, ok, "domains = {what}: {err}");
        assert!(err.contains(says), "domains = {what}: {err}");
    }
}

// --- Azure ---------------------------------------------------------------------------------------

const AZ_HTTPS: &str = "local.https_enabled";
const AZ_RBAC: &str = "var.tls_key_vault_authorization == \"rbac\"";
const AZ_POLICY: &str = "var.tls_key_vault_authorization == \"access_policy\"";

/// (HTTPS on, authorization) -> the plan.
fn azure_plans(m: &Module) -> Vec<(bool, &'static str, Plan<'_>)> {
    vec![
        (false, "rbac", Plan::new(m, &[(AZ_HTTPS, false), (AZ_RBAC, true), (AZ_POLICY, false)])),
        (true, "rbac", Plan::new(m, &[(AZ_HTTPS, true), (AZ_RBAC, true), (AZ_POLICY, false)])),
        (true, "access_policy", Plan::new(m, &[(AZ_HTTPS, true), (AZ_RBAC, false), (AZ_POLICY, true)])),
    ]
}

/// azurerm_application_gateway: a request_routing_rule names a backend pool and settings, or a
/// redirect_configuration, never both ("conflict between backend_address_pool_name and
/// redirect_configuration_name"); a redirect_configuration has exactly one of target_listener_name
/// and target_url; include_path and include_query_string default to false. With the certificate,
/// every rule of the port 80 listener redirects (301, path and query kept) to the HTTPS listener,
/// which serves the backend; without it, port 80 serves the backend as before and nothing HTTPS
/// exists.
#[test]
fn azure_port_80_redirects_to_https_when_a_certificate_is_given_and_forwards_as_before_otherwise() {
    let m = Module::load("azure");
    assert_eq!(one_line(m.local("https_enabled")), "var.tls_certificate_key_vault_secret_id != \"\"");
    for (https, auth, plan) in azure_plans(&m) {
        let at = format!("https={https} ({auth})");
        let gw = plan.resource("azurerm_application_gateway", "rest").unwrap();
        let ports: BTreeMap<String, i64> = plan
            .named(gw, "frontend_port")
            .into_iter()
            .map(|(n, b)| (n, crate::infra::number(&plan.eval(attr(b, "port").unwrap())).unwrap()))
            .collect();
        let listeners = plan.named(gw, "http_listener");
        let redirects = plan.named(gw, "redirect_configuration");
        let certs = plan.named(gw, "ssl_certificate");
        let rules = plan.blocks(gw, "request_routing_rule");
        let port_of = |listener: &Body| ports[&plan.string(listener, "frontend_port_name").unwrap()];
        for rule in &rules {
            let listener = listeners[&plan.string(rule, "http_listener_name").expect("a literal listener")];
            let forwards = attr(rule, "backend_address_pool_name").is_some();
            let redirect = plan.string(rule, "redirect_configuration_name");
            assert!(forwards != redirect.is_some(), "{at}: a rule forwards or redirects, not both");
            assert_eq!(
                forwards,
                attr(rule, "backend_http_settings_name").is_some(),
                "{at}: pool and settings together"
            );
            let protocol = plan.string(listener, "protocol").unwrap();
            match (https, port_of(listener)) {
                (false, 80) => assert!(forwards && protocol == "Http", "{at}: port 80 serves the backend as before"),
                (true, 80) => {
                    let r = redirects[redirect.as_deref().unwrap_or_else(|| panic!("{at}: port 80 forwards"))];
                    assert_eq!(plan.string(r, "redirect_type").as_deref(), Some("Permanent"), "301");
                    assert!(attr(r, "target_url").is_none(), "{at}: target_listener_name xor target_url");
                    let target = listeners[&plan.string(r, "target_listener_name").unwrap()];
                    assert_eq!(plan.string(target, "protocol").as_deref(), Some("Https"));
                    assert_eq!(port_of(target), 443);
                    for key in ["include_path", "include_query_string"] {
                        assert_eq!(plan.text(r, key), "true", "{at}: {key} defaults to false");
                    }
                }
                (true, 443) => {
                    assert!(forwards && protocol == "Https", "{at}: 443 serves the backend over TLS");
                    let cert = certs[&plan.string(listener, "ssl_certificate_name").expect("a certificate")];
                    assert_eq!(plan.text(cert, "key_vault_secret_id"), "var.tls_certificate_key_vault_secret_id");
                    assert!(attr(cert, "data").is_none() && attr(cert, "password").is_none(), "Key Vault or data");
                    assert_eq!(plan.text(listener, "host_name"), "var.domain");
                    assert!(attr(listener, "host_names").is_none(), "host_name and host_names are exclusive");
                }
                (_, port) => panic!("{at}: a listener on {port}"),
            }
        }
        let expected: BTreeSet<i64> = if https { BTreeSet::from([80, 443]) } else { BTreeSet::from([80]) };
        assert_eq!(ports.values().copied().collect::<BTreeSet<_>>(), expected, "{at}");
        assert_eq!(listeners.len(), expected.len(), "{at}");
        // Every listener is the listener of exactly one (Basic) rule, which decides what its port
        // does ("Associate a listener to the rule", Application Gateway request routing rules): a
        // port 80 with no rule left would make "every rule on 80 redirects" above hold vacuously.
        for name in listeners.keys() {
            let used = rules.iter().filter(|r| plan.string(r, "http_listener_name").as_deref() == Some(name)).count();
            assert_eq!(used, 1, "{at}: listener {name} is the listener of {used} rules");
        }
        if !https {
            assert!(redirects.is_empty() && certs.is_empty() && plan.blocks(gw, "identity").is_empty(), "{at}");
        }
        // The gateway's NSG admits 443 exactly when there is an HTTPS listener, from the same
        // sources as 80.
        let rules: BTreeMap<String, &Body> = plan
            .resources("azurerm_network_security_rule")
            .into_iter()
            .filter(|(_, r)| plan.text(r, "network_security_group_name").contains("security_group.gateway."))
            .map(|(_, r)| (plan.text(r, "destination_port_range"), r))
            .collect();
        assert_eq!(rules.contains_key("\"443\""), https, "{at}: NSG rule for 443");
        if https {
            for key in ["source_address_prefix", "source_address_prefixes", "protocol", "access", "direction"] {
                assert_eq!(plan.text(rules["\"443\""], key), plan.text(rules["\"80\""], key), "{at}: {key}");
            }
        }
    }
}

/// azurerm_application_gateway request_routing_rule.priority: "from 1 to 20000", "required when
/// sku[0].tier is set to *_v2", and once one rule has a priority every rule must (the provider's
/// "if you wish to use rule priority, you will have to specify rule-priority field values for all
/// the existing request routing rules"); the API refuses two rules with the same priority.
#[test]
fn azure_routing_rule_priorities_are_set_unique_and_in_range() {
    let m = Module::load("azure");
    for (https, auth, plan) in azure_plans(&m) {
        let gw = plan.resource("azurerm_application_gateway", "rest").unwrap();
        let tier = plan.string(crate::infra::block(gw, "sku"), "tier").unwrap();
        assert!(tier.ends_with("_v2"), "{tier}");
        let mut seen = BTreeSet::new();
        for rule in plan.blocks(gw, "request_routing_rule") {
            let p = crate::infra::number(&plan.eval(attr(rule, "priority").expect("a priority (v2 SKU)")))
                .expect("a literal priority");
            assert!((1..=20000).contains(&p), "priority {p}");
            assert!(seen.insert(p), "https={https} ({auth}): priority {p} twice");
        }
    }
}

/// "Application Gateway TLS policy overview": minimum protocol of the predefined policies,
/// 20150501: 1.0, 20170401: 1.1, 20170401S, 20220101 and 20220101S: 1.2; a Custom or CustomV2
/// policy states min_protocol_version. The policy is the whole gateway's, every HTTPS listener's
/// (and an ssl_profile's own policy overrides it for its listeners).
#[test]
fn azure_no_https_listener_accepts_less_than_tls_1_2() {
    let minimum = BTreeMap::from([
        ("AppGwSslPolicy20150501", "1.0"),
        ("AppGwSslPolicy20170401", "1.1"),
        ("AppGwSslPolicy20170401S", "1.2"),
        ("AppGwSslPolicy20220101", "1.2"),
        ("AppGwSslPolicy20220101S", "1.2"),
    ]);
    let m = Module::load("azure");
    for (https, auth, plan) in azure_plans(&m) {
        let gw = plan.resource("azurerm_application_gateway", "rest").unwrap();
        let mut policies = plan.blocks(gw, "ssl_policy");
        for profile in plan.blocks(gw, "ssl_profile") {
            policies.extend(plan.blocks(profile, "ssl_policy"));
        }
        assert!(!policies.is_empty(), "no ssl_policy: the API version's default applies");
        for policy in policies {
            assert!(attr(policy, "disabled_protocols").is_none(), "disabled_protocols cannot go with a policy type");
            match plan.string(policy, "policy_type").as_deref() {
                Some("Predefined") => {
                    let name = plan.string(policy, "policy_name").unwrap();
                    let min = minimum.get(name.as_str()).unwrap_or_else(|| panic!("unknown policy {name}"));
                    assert_eq!(*min, "1.2", "https={https} ({auth}): {name} accepts TLS {min}");
                }
                Some("Custom" | "CustomV2") => {
                    let min = plan.string(policy, "min_protocol_version").unwrap_or_default();
                    assert!(["TLSv1_2", "TLSv1_3"].contains(&min.as_str()), "min_protocol_version {min}");
                }
                other => panic!("ssl_policy type {other:?}"),
            }
        }
    }
}

/// azurerm_application_gateway ssl_certificate: "For TLS termination with Key Vault certificates
/// to work properly, an existing user-assigned managed identity ... should be defined via identity
/// block" and granted get on the secret; identity.type: "Only possible value is UserAssigned".
/// Microsoft, "TLS termination with Key Vault certificates": an access policy with Get on secrets
/// (Vault access policy model), or the role Key Vault Secrets User (Azure RBAC model), which Key
/// Vault also grants on a single secret (scope `<vault id>/secrets/<name>`). The grant exists
/// before the gateway that reads it (depends_on), for the gateway's identity only; the instances'
/// identity gets no Key Vault access.
#[test]
fn azure_gateway_identity_is_granted_the_certificate_secret_only() {
    let m = Module::load("azure");
    assert_eq!(
        one_line(m.local("tls_secret_name")),
        "local.https_enabled ? regex(\"/secrets/([0-9A-Za-z-]+)\", var.tls_certificate_key_vault_secret_id)[0] : \"\""
    );
    for (https, auth, plan) in azure_plans(&m) {
        let at = format!("https={https} ({auth})");
        let gw = plan.resource("azurerm_application_gateway", "rest").unwrap();
        let identities = plan.blocks(gw, "identity");
        let roles = plan.resources("azurerm_role_assignment");
        let policies = plan.resources("azurerm_key_vault_access_policy");
        if !https {
            assert!(identities.is_empty() && roles.is_empty() && policies.is_empty(), "{at}");
            assert!(plan.resource("azurerm_user_assigned_identity", "gateway").is_none(), "{at}");
            continue;
        }
        assert_eq!(identities.len(), 1, "{at}");
        assert_eq!(plan.string(identities[0], "type").as_deref(), Some("UserAssigned"));
        assert_eq!(plan.text(identities[0], "identity_ids"), "[azurerm_user_assigned_identity.gateway[0].id]");
        assert!(plan.resource("azurerm_user_assigned_identity", "gateway").is_some(), "{at}");
        let principal = "azurerm_user_assigned_identity.gateway[0].principal_id";
        let depends = one_line(attr(gw, "depends_on").expect("the gateway waits for its grant"));
        match auth {
            "rbac" => {
                assert!(policies.is_empty(), "{at}");
                assert_eq!(roles.len(), 1, "{at}");
                let (name, role) = roles[0];
                assert_eq!(plan.string(role, "role_definition_name").as_deref(), Some("Key Vault Secrets User"));
                assert_eq!(plan.text(role, "principal_id"), principal);
                assert_eq!(plan.text(role, "scope"), "\"${var.tls_key_vault_id}/secrets/${local.tls_secret_name}\"");
                assert!(depends.contains(&format!("azurerm_role_assignment.{name}")), "{depends}");
                // Ordering is not enough: Key Vault applies a role assignment "up to 10 minutes
                // (600 seconds)" after it is made (Azure RBAC for Key Vault, Known limits), and
                // the gateway's create reads the secret at once. A wait, made when the grant is
                // (re)made, stands between them.
                let wait = plan
                    .resource("terraform_data", "gateway_certificate_propagation")
                    .unwrap_or_else(|| panic!("{at}: no wait for the role assignment to reach Key Vault"));
                assert_eq!(plan.text(wait, "triggers_replace"), format!("[azurerm_role_assignment.{name}[0].id]"));
                let provisioner = crate::infra::block(wait, "provisioner");
                assert_eq!(provisioner_kind(wait), "local-exec");
                assert_eq!(plan.text(provisioner, "command"), "\"sleep ${var.tls_rbac_propagation_seconds}\"");
                assert!(depends.contains("terraform_data.gateway_certificate_propagation"), "{depends}");
                assert!(m.default_number("tls_rbac_propagation_seconds") >= 600, "Key Vault's 600 s");
            }
            _ => {
                assert!(plan.resource("terraform_data", "gateway_certificate_propagation").is_none(), "{at}");
                assert!(roles.is_empty(), "{at}");
                assert_eq!(policies.len(), 1, "{at}");
                let (name, policy) = policies[0];
                assert_eq!(plan.text(policy, "object_id"), principal);
                assert_eq!(plan.text(policy, "key_vault_id"), "var.tls_key_vault_id");
                assert_eq!(strings(attr(policy, "secret_permissions").unwrap()), ["Get"], "read only");
                for key in ["key_permissions", "certificate_permissions", "storage_permissions"] {
                    assert!(attr(policy, key).is_none(), "{key}: the gateway reads one secret");
                }
                assert!(depends.contains(&format!("azurerm_key_vault_access_policy.{name}")), "{depends}");
            }
        }
    }
}

/// Microsoft, "TLS termination with Key Vault certificates": "we strongly recommend that you use a
/// secret identifier that doesn't specify a version", so that the gateway rotates to a renewed
/// certificate; "Azure Application Gateway currently supports only Key Vault accounts in the same
/// subscription". The provider validates the id's shape only (any version), so the variables
/// refuse a versioned id, a certificate without a domain, and a vault id that does not name the
/// secret's vault; the subscription is a precondition on the gateway (it needs the provider's
/// client config).
#[test]
fn azure_https_variables_are_validated_before_apply() {
    let m = Module::load("azure");
    let gw = m.resource("azurerm_application_gateway", "rest");
    let preconditions: Vec<String> = crate::infra::blocks(crate::infra::block(gw, "lifecycle"), "precondition")
        .into_iter()
        .map(|p| crate::infra::text(p, "condition"))
        .collect();
    assert!(
        preconditions
            .iter()
            .any(|c| c.contains("data.azurerm_client_config.current.subscription_id")
                && c.contains("var.tls_key_vault_id")),
        "{preconditions:?}"
    );
    let vars = [
        "domain",
        "tls_certificate_key_vault_secret_id",
        "tls_key_vault_id",
        "tls_key_vault_authorization",
        "tls_rbac_propagation_seconds",
    ];
    let Some(tf) = ThrowawayModule::new(&m.variables_hcl(&vars)) else { return };
    let secret = "https://cand-kv.vault.azure.net/secrets/api-tls";
    let vault = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/cand-kv";
    let ok = |extra: &[(&'static str, &'static str)]| {
        let mut v = vec![("domain", "api.example.com"), ("tls_certificate_key_vault_secret_id", secret)];
        v.push(("tls_key_vault_id", vault));
        for (k, val) in extra {
            v.retain(|(key, _)| key != k);
            v.push((k, val));
        }
        v
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool);
    let cases: Vec<Case> = vec![
        ("nothing (HTTP)", vec![], true),
        ("a domain, a versionless secret and its vault", ok(&[]), true),
        (
            "a trailing slash",
            ok(&[("tls_certificate_key_vault_secret_id", "https://cand-kv.vault.azure.net/secrets/api-tls/")]),
            true,
        ),
        ("access policies", ok(&[("tls_key_vault_authorization", "access_policy")]), true),
        (
            "a versioned secret id",
            ok(&[(
                "tls_certificate_key_vault_secret_id",
                "https://cand-kv.vault.azure.net/secrets/api-tls/0123456789abcdef0123456789abcdef",
            )]),
            false,
        ),
        (
            "a certificate id",
            ok(&[("tls_certificate_key_vault_secret_id", "https://cand-kv.vault.azure.net/certificates/api-tls")]),
            false,
        ),
        (
            "plain http",
            ok(&[("tls_certificate_key_vault_secret_id", "http://cand-kv.vault.azure.net/secrets/api-tls")]),
            false,
        ),
        ("no domain", ok(&[("domain", "")]), false),
        ("a domain alone", vec![("domain", "api.example.com")], false),
        ("no vault id", ok(&[("tls_key_vault_id", "")]), false),
        (
            "another vault",
            ok(&[(
                "tls_key_vault_id",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/other-kv",
            )]),
            false,
        ),
        ("not a vault id", ok(&[("tls_key_vault_id", "cand-kv")]), false),
        ("a URL as domain", ok(&[("domain", "https://api.example.com")]), false),
        ("a wildcard domain", ok(&[("domain", "*.example.com")]), false),
        ("an unknown authorization", ok(&[("tls_key_vault_authorization", "owner")]), false),
        ("no propagation wait", ok(&[("tls_rbac_propagation_seconds", "0")]), true),
        ("a negative wait", ok(&[("tls_rbac_propagation_seconds", "-1")]), false),
        ("a fractional wait", ok(&[("tls_rbac_propagation_seconds", "0.5")]), false),
        ("a wait over 30 minutes", ok(&[("tls_rbac_propagation_seconds", "1801")]), false),
    ];
    for (what, values, accept) in cases {
        let (accepted, err) = tf.accepts(&values);
        assert_eq!(accepted, accept, "{what}: {err}");
        if what == "a versioned secret id" {
            assert!(err.contains("versionless"), "{err}");
        }
    }
}

/// Outputs: the REST URL is https://<domain> exactly when HTTPS is on, so that the scripts
/// (validate, calibrate, scale-demo) send the write key over TLS and verify the certificate against
/// the name it is for (not the load balancer's own name, which no certificate of yours covers);
/// the address for the DNS record is an output too.
#[test]
fn rest_url_is_https_exactly_when_https_is_on() {
    for (cloud, https_url, http_url, address) in [
        ("aws", "\"https://${var.domain}\"", "\"http://${aws_lb.rest.dns_name}\"", "alb_dns_name"),
        (
            "gcp",
            "\"https://${var.domains[0]}\"",
            "\"http://${google_compute_global_address.rest.address}\"",
            "rest_address",
        ),
        ("azure", "\"https://${var.domain}\"", "\"http://${azurerm_public_ip.gateway.fqdn}\"", "gateway_fqdn"),
    ] {
        let m = Module::load(cloud);
        let outputs: BTreeMap<&str, &Body> =
            m.top_level().into_iter().filter(|(k, _, _)| *k == "output").map(|(_, l, b)| (l[0], b)).collect();
        for (https, url) in [(true, https_url), (false, http_url)] {
            let plan = Plan::new(&m, &[("local.https_enabled", https)]);
            assert_eq!(plan.text(outputs["rest_url"], "value"), url, "{cloud}: https={https}");
        }
        assert!(outputs.contains_key(address), "{cloud}: no output {address} for the DNS record");
    }
}

/// AWS: the certificate goes with the domain it is for (the scripts verify it against rest_url).
#[test]
fn aws_certificate_needs_its_domain() {
    let m = Module::load("aws");
    assert_eq!(one_line(m.local("https_enabled")), "var.certificate_arn != \"\"");
    let Some(tf) = ThrowawayModule::new(&m.variables_hcl(&["certificate_arn", "domain"])) else { return };
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/0b7b2f3e-1a2b-4c3d-8e9f-0123456789ab";
    for (what, values, ok) in [
        ("neither", vec![], true),
        ("both", vec![("certificate_arn", arn), ("domain", "api.example.com")], true),
        ("a certificate alone", vec![("certificate_arn", arn)], false),
        ("a domain alone", vec![("domain", "api.example.com")], false),
        ("a URL", vec![("certificate_arn", arn), ("domain", "https://api.example.com")], false),
    ] {
        let (accepted, err) = tf.accepts(&values);
        assert_eq!(accepted, ok, "{what}: {err}");
    }
}

/// The variable blocks of a root in a module of their own: no provider, so `terraform plan` runs
/// offline and evaluates their validations with the real Terraform. None when terraform is not
/// installed (the check is then skipped, and says so).
pub(crate) struct ThrowawayModule {
    dir: tempfile::TempDir,
}

impl ThrowawayModule {
    pub(crate) fn new(variables: &str) -> Option<Self> {
        if Command::new("terraform").arg("version").output().is_err() {
            eprintln!("terraform is not installed: the variables' validations were not exercised");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), variables).unwrap();
        let tf = ThrowawayModule { dir };
        let init = tf.run(&["init", "-backend=false", "-input=false", "-no-color"]);
        assert!(init.status.success(), "terraform init: {}", String::from_utf8_lossy(&init.stderr));
        Some(tf)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("terraform")
            .args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .unwrap()
    }

    /// The value of an output of the module under these values (`terraform plan` then
    /// `terraform output` would need a state: `terraform apply` of a provider-less module is as
    /// offline as its plan).
    pub(crate) fn output(&self, name: &str, values: &[(&str, &str)]) -> String {
        let mut args = vec!["apply".to_owned(), "-auto-approve".into(), "-input=false".into(), "-no-color".into()];
        for (k, v) in values {
            args.push(format!("-var={k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args);
        assert!(out.status.success(), "terraform apply: {}", String::from_utf8_lossy(&out.stderr));
        let out = self.run(&["output", "-raw", name]);
        assert!(out.status.success(), "terraform output: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Whether `terraform plan` accepts these values (HCL expressions), and its errors.
    pub(crate) fn accepts(&self, values: &[(&str, &str)]) -> (bool, String) {
        let mut args = vec!["plan".to_owned(), "-input=false".into(), "-lock=false".into(), "-no-color".into()];
        for (k, v) in values {
            args.push(format!("-var={k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args);
        // The diagnostics as one line of words (Terraform may wrap and frame them).
        let err =
            String::from_utf8_lossy(&out.stderr).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
        if !out.status.success() {
            assert!(err.contains("Invalid value for variable"), "terraform failed otherwise: {err}");
        }
        (out.status.success(), err)
    }
}

#[test]
fn the_throwaway_module_runs_offline_and_sees_a_failed_validation() {
    let body = "variable \"v\" {\n  type = string\n  validation {\n    condition     = var.v != \"no\"\n    error_message = \"not no.\"\n  }\n}\n";
    let Some(tf) = ThrowawayModule::new(body) else { return };
    assert!(tf.accepts(&[("v", "yes")]).0);
    assert!(!tf.accepts(&[("v", "no")]).0);
    assert!(repo_root().join("terraform").is_dir());
}
