//! Reads a Terraform root module (`terraform/<cloud>/*.tf`) with hcl-rs, for the tests that check
//! cross-file invariants without providers or a network: literal values, and the text of an
//! expression with every `var.` and `local.` it mentions expanded, to ask "could this be
//! 0.0.0.0/0?" of an expression like `each.value` over `var.alb_ingress_cidrs`.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    fs,
    path::{Path, PathBuf},
};

use hcl::{Block, Body, Expression};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub struct Module {
    pub name: String,
    blocks: Vec<Block>,
}

impl Module {
    /// Every top-level block of every `.tf` file of `terraform/<cloud>`.
    pub fn load(cloud: &str) -> Module {
        let dir = repo_root().join("terraform").join(cloud);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .tf files in {}", dir.display());
        let mut blocks = Vec::new();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            blocks.extend(body.into_blocks());
        }
        Module { name: cloud.into(), blocks }
    }

    fn labelled(&self, kind: &'static str) -> impl Iterator<Item = (Vec<&str>, &Body)> + '_ {
        self.blocks
            .iter()
            .filter(move |b| b.identifier() == kind)
            .map(|b| (b.labels().iter().map(|l| l.as_str()).collect(), b.body()))
    }

    /// Every top-level block (resource, data, module, locals, output, variable, ...), as
    /// (identifier, labels, body).
    pub fn top_level(&self) -> Vec<(&str, Vec<&str>, &Body)> {
        self.blocks
            .iter()
            .map(|b| (b.identifier(), b.labels().iter().map(|l| l.as_str()).collect(), b.body()))
            .collect()
    }

    /// `variable "NAME"` blocks, as (name, body).
    pub fn variables(&self) -> Vec<(&str, &Body)> {
        self.labelled("variable").map(|(l, b)| (l[0], b)).collect()
    }

    /// `resource "TYPE" "NAME"` blocks of one type, as (name, body).
    pub fn resources(&self, ty: &str) -> Vec<(&str, &Body)> {
        self.labelled("resource").filter(|(l, _)| l[0] == ty).map(|(l, b)| (l[1], b)).collect()
    }

    /// The text of every attribute expression in the module, nested blocks included.
    pub fn expressions(&self) -> Vec<String> {
        fn walk(body: &Body, out: &mut Vec<String>) {
            out.extend(body.attributes().map(|a| a.expr().to_string()));
            for block in body.blocks() {
                walk(block.body(), out);
            }
        }
        let mut out = Vec::new();
        for block in &self.blocks {
            walk(block.body(), &mut out);
        }
        out
    }

    /// Every `resource` and `data` block, as (kind, type, name, body).
    pub fn typed_blocks(&self) -> Vec<(&str, &str, &str, &Body)> {
        self.blocks
            .iter()
            .filter(|b| b.identifier() == "resource" || b.identifier() == "data")
            .map(|b| (b.identifier(), b.labels()[0].as_str(), b.labels()[1].as_str(), b.body()))
            .collect()
    }

    /// Every resource, as (type, name, body).
    pub fn all_resources(&self) -> Vec<(&str, &str, &Body)> {
        self.labelled("resource").map(|(l, b)| (l[0], l[1], b)).collect()
    }

    pub fn resource(&self, ty: &str, name: &str) -> &Body {
        self.resources(ty)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{}: no resource {ty}.{name}", self.name))
    }

    pub fn data(&self, ty: &str, name: &str) -> &Body {
        self.labelled("data")
            .find(|(l, _)| l[0] == ty && l[1] == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{}: no data {ty}.{name}", self.name))
    }

    /// The body of `module "NAME" {}`.
    pub fn module_call(&self, name: &str) -> &Body {
        self.labelled("module")
            .find(|(l, _)| l[0] == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{}: no module {name}", self.name))
    }

    /// What a cloud's module passes to `modules/instance-config` (the instances' env file): its
    /// own port and drain variables, and store settings (returned, key -> HCL text) whose keys are
    /// all candidate-server's environment variables.
    pub fn store_env(&self) -> BTreeMap<String, String> {
        let call = self.module_call("instance_config");
        assert_eq!(text(call, "source"), "\"../modules/instance-config\"");
        for var in ["http_port", "grpc_port", "metrics_port", "drain_period_seconds", "shutdown_grace_seconds"] {
            assert_eq!(text(call, var), format!("var.{var}"), "{}: instance_config.{var}", self.name);
        }
        let Some(Expression::Object(env)) = attr(call, "store_env") else { panic!("store_env is not an object") };
        let known = binary::env_names();
        let pairs: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), one_line(v))).collect();
        for key in pairs.keys() {
            assert!(known.contains(key), "{}: {key} is not an environment variable of candidate-server", self.name);
        }
        pairs
    }

    /// The default of `variable "NAME"`.
    pub fn default(&self, name: &str) -> &Expression {
        self.labelled("variable")
            .find(|(l, _)| l[0] == name)
            .and_then(|(_, b)| attr(b, "default"))
            .unwrap_or_else(|| panic!("{}: variable {name} has no default", self.name))
    }

    pub fn default_number(&self, name: &str) -> i64 {
        number(self.default(name)).unwrap_or_else(|| panic!("variable {name}: default is not a number"))
    }

    pub fn default_string(&self, name: &str) -> String {
        string(self.default(name)).unwrap_or_else(|| panic!("variable {name}: default is not a string"))
    }

    /// The expression of `local.NAME`, from whichever `locals {}` block defines it.
    pub fn local(&self, name: &str) -> &Expression {
        self.blocks
            .iter()
            .filter(|b| b.identifier() == "locals")
            .find_map(|b| attr(b.body(), name))
            .unwrap_or_else(|| panic!("{}: no local {name}", self.name))
    }

    /// The expression of `local.NAME`, when some `locals {}` block defines it.
    pub fn local_opt(&self, name: &str) -> Option<&Expression> {
        self.blocks.iter().filter(|b| b.identifier() == "locals").find_map(|b| attr(b.body(), name))
    }

    /// The `variable` blocks named, as HCL source (for a throwaway module that exercises their
    /// validations with the real Terraform).
    pub fn variables_hcl(&self, names: &[&str]) -> String {
        let blocks: Vec<Block> = self
            .blocks
            .iter()
            .filter(|b| b.identifier() == "variable" && names.contains(&b.labels()[0].as_str()))
            .cloned()
            .collect();
        assert_eq!(blocks.len(), names.len(), "{}: variables {names:?}", self.name);
        hcl::to_string(&Body::from(blocks)).unwrap()
    }

    /// The body of `variable "NAME"`.
    pub fn variable(&self, name: &str) -> &Body {
        self.labelled("variable")
            .find(|(l, _)| l[0] == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{}: no variable {name}", self.name))
    }

    /// The expression's text followed by the text of every variable default and local it
    /// mentions, transitively.
    pub fn expand(&self, expr: &Expression) -> String {
        let mut seen = HashSet::new();
        let mut out = String::new();
        self.expand_into(&expr.to_string(), &mut seen, &mut out);
        out
    }

    fn expand_into(&self, text: &str, seen: &mut HashSet<String>, out: &mut String) {
        out.push_str(text);
        out.push('\n');
        for (kind, name) in references(text) {
            if !seen.insert(format!("{kind}.{name}")) {
                continue;
            }
            let expanded = match kind {
                "var" => self.labelled("variable").find(|(l, _)| l[0] == name).and_then(|(_, b)| attr(b, "default")),
                _ => self.blocks.iter().filter(|b| b.identifier() == "locals").find_map(|b| attr(b.body(), &name)),
            };
            if let Some(e) = expanded {
                self.expand_into(&e.to_string(), seen, out);
            }
        }
    }

    /// The expanded text of a resource's attribute, plus its `for_each` when the value comes from
    /// `each.`.
    pub fn expand_attr(&self, body: &Body, key: &str) -> String {
        let Some(expr) = attr(body, key) else { return String::new() };
        let mut text = self.expand(expr);
        if text.contains("each.")
            && let Some(for_each) = attr(body, "for_each")
        {
            text.push_str(&self.expand(for_each));
        }
        text
    }
}

/// `var.x` / `local.y` references in an expression's text.
pub fn references(text: &str) -> BTreeSet<(&'static str, String)> {
    let mut out = BTreeSet::new();
    for kind in ["var", "local"] {
        let needle = format!("{kind}.");
        let mut rest = text;
        while let Some(i) = rest.find(&needle) {
            let before = rest[..i].chars().next_back();
            let after = &rest[i + needle.len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') && !name.is_empty() {
                out.insert((kind, name.clone()));
            }
            rest = &after[name.len()..];
        }
    }
    out
}

pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The attribute's expression as one line of HCL text ("" when absent).
pub fn text(body: &Body, key: &str) -> String {
    attr(body, key).map(one_line).unwrap_or_default()
}

/// An expression as one line: `[a, b]`, whatever layout hcl-rs' formatter picks.
pub fn one_line(expr: &Expression) -> String {
    let joined = expr.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    joined
        .replace("[ ", "[")
        .replace(",]", "]")
        .replace(", ]", "]")
        .replace(" ]", "]")
        .replace("{ ", "{")
        .replace(" }", "}")
}

pub fn blocks<'a>(body: &'a Body, ident: &str) -> Vec<&'a Body> {
    body.blocks().filter(|b| b.identifier() == ident).map(|b| b.body()).collect()
}

/// The one nested block `ident` (panics when there is not exactly one).
pub fn block<'a>(body: &'a Body, ident: &str) -> &'a Body {
    let found = blocks(body, ident);
    assert_eq!(found.len(), 1, "expected one `{ident}` block, found {}", found.len());
    found[0]
}

pub fn string(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn number(expr: &Expression) -> Option<i64> {
    match expr {
        Expression::Number(n) => n.as_i64(),
        _ => None,
    }
}

pub fn boolean(expr: &Expression) -> Option<bool> {
    match expr {
        Expression::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The literal strings of an array expression.
pub fn strings(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items.iter().filter_map(string).collect(),
        _ => Vec::new(),
    }
}

pub fn str_attr(body: &Body, key: &str) -> Option<String> {
    attr(body, key).and_then(string)
}

pub fn num_attr(body: &Body, key: &str) -> Option<i64> {
    attr(body, key).and_then(number)
}

pub fn bool_attr(body: &Body, key: &str) -> Option<bool> {
    attr(body, key).and_then(boolean)
}

/// Every integer literal in a piece of HCL text (ports in a `[80, 443]` list, say).
pub fn integers(text: &str) -> BTreeSet<i64> {
    text.split(|c: char| !c.is_ascii_digit() && c != '.' && c != '/')
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Whether an expanded expression can hold an address range open to the whole internet.
pub fn world_open(expanded: &str) -> bool {
    ["\"0.0.0.0/0\"", "\"::/0\"", "\"*\"", "\"Internet\"", "\"0.0.0.0\""].iter().any(|w| expanded.contains(w))
}

/// The binary's facts the deployments must agree with.
pub mod binary {
    use std::time::Duration;

    use candidates_server::Config;
    use clap::CommandFactory;

    /// The default of a flag, as clap shows it (not affected by the environment).
    pub fn default(id: &str) -> String {
        let cmd = Config::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("no flag {id}"));
        arg.get_default_values()[0].to_string_lossy().into_owned()
    }

    pub fn default_port(id: &str) -> i64 {
        default(id).rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn default_secs(id: &str) -> i64 {
        let d: Duration = humantime::parse_duration(&default(id)).unwrap();
        d.as_secs() as i64
    }

    /// Every environment variable a flag reads.
    pub fn env_names() -> Vec<String> {
        let cmd = Config::command();
        cmd.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect()
    }

    /// The REST path of the health check, from the gateway's route table (GetStatus).
    pub fn health_path() -> &'static str {
        candidates_gateway::ROUTES.iter().find(|r| r.rpc == "GetStatus").expect("GetStatus route").path
    }
}
