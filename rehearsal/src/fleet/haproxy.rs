//! HAProxy (the Debian package) as the load balancer: an HTTP frontend for REST with active
//! `GET /gtg` checks, a TCP frontend for gRPC (like the internal NLB / ILB) checked on the same
//! `/gtg`, and servers added, drained and removed through the runtime API (stats socket).
//!
//! Rules from HAProxy 2.6's management guide (management.txt, `add server` / `del server`) that
//! this relies on, each guarded by a test below:
//! - `add server` needs a backend with a dynamic algorithm (roundrobin is; static-rr is not);
//! - it takes no settings from `default-server`: check interval, rise and fall go on the line;
//! - a new server starts in maintenance with checks off: `enable health` then `enable server`;
//! - enabled, it counts as UP before any check ran (seen on 2.6.12: `UP 1/2`, then `UP` on the
//!   first good check), unlike a cloud target that must pass the healthy threshold first: so the
//!   same command line forces `health down`, and it takes `rise` good checks to be routed to.
//! - `del server` needs the server in maintenance with no connections left.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
    process::{Child, Command},
};

use super::{FleetError, timing::Timing};

/// The backends every instance is registered in.
pub const REST: &str = "rest";
pub const GRPC: &str = "grpc";

#[derive(Debug, Clone)]
pub struct LbConfig {
    pub rest: SocketAddr,
    pub grpc: SocketAddr,
    pub socket: PathBuf,
    pub timing: Timing,
    /// Retry idempotent REST requests on another server (off by default: the clouds' load
    /// balancers do not retry).
    pub retries: bool,
}

impl LbConfig {
    pub fn render(&self) -> String {
        let t = &self.timing;
        let check_timeout = t.check_timeout.as_millis();
        // Off: one attempt, as an ALB / Application Gateway / GCP LB makes. On: connection
        // failures and requests a dying server never answered go to another server, GETs only
        // (disable-l7-retry) so a POST is never sent twice.
        let (rest_retries, grpc_retries) = if self.retries {
            (
                "  retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response response-timeout\n  \
                 http-request disable-l7-retry unless METH_GET\n",
                "  retries 3\n  option redispatch 1\n",
            )
        } else {
            ("  retries 0\n", "  retries 0\n")
        };
        format!(
            "# Written by candidatectl fleet; servers come and go through the runtime API.
global
  maxconn 4096
  stats socket {socket} mode 600 level admin
  stats timeout 10s

defaults
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  timeout check {check_timeout}ms

frontend rest_in
  mode http
  bind {rest}
  default_backend {REST}

backend {REST}
  mode http
  balance roundrobin
  option httpchk GET /gtg
  http-check expect status 200
{rest_retries}
frontend grpc_in
  mode tcp
  bind {grpc}
  default_backend {GRPC}

backend {GRPC}
  mode tcp
  balance roundrobin
  # The L4 balancers cannot speak gRPC health: /gtg on the REST port carries the same state.
  option httpchk GET /gtg
  http-check expect status 200
{grpc_retries}",
            socket = self.socket.display(),
            rest = self.rest,
            grpc = self.grpc,
        )
    }
}

/// The runtime API command line that puts a server into a backend, checked like the deployments
/// check: one line (`;`-separated) so that nothing is routed to it between `enable server` and
/// `health down`.
pub fn add_server_line(backend: &str, name: &str, addr: SocketAddr, check_port: u16, t: &Timing) -> String {
    add_server_commands(backend, name, addr, check_port, t).join("; ")
}

fn add_server_commands(backend: &str, name: &str, addr: SocketAddr, check_port: u16, t: &Timing) -> Vec<String> {
    let server = format!("{backend}/{name}");
    vec![
        // No default-server inheritance: every check setting is spelled out here.
        format!(
            "add server {server} {addr} check port {check_port} inter {}ms fall {} rise {}",
            t.check_interval.as_millis(),
            t.fall,
            t.rise
        ),
        format!("enable health {server}"),
        format!("enable server {server}"),
        format!("set server {server} health down"),
    ]
}

/// The lines that take a server out of a backend for good (after its process is gone).
pub fn remove_server_commands(backend: &str, name: &str) -> Vec<String> {
    let server = format!("{backend}/{name}");
    vec![
        format!("set server {server} state maint"),
        format!("shutdown sessions server {server}"),
        format!("del server {server}"),
    ]
}

/// Whether an answer of the runtime API reports a failure (it answers 200-style text either way).
fn is_error(answer: &str) -> bool {
    let a = answer.trim();
    !(a.is_empty() || a == "New server registered." || a == "Server deleted.")
}

/// One server's line of `show stat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStat {
    /// UP, DOWN, MAINT, DRAIN, `UP 1/3` (going up), `DOWN 1/2` (going down) ...
    pub status: String,
    /// Current sessions: requests in progress (HTTP), connections (TCP).
    pub scur: u64,
    /// Cumulative sessions (HTTP: requests; TCP: connections).
    pub stot: u64,
}

impl ServerStat {
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ") || self.status == "DRAIN"
    }
}

/// What `show stat` says: per (backend, server) and the backends' request totals.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub servers: HashMap<(String, String), ServerStat>,
    /// HTTP requests a backend received in all (`req_tot`).
    pub backend_requests: HashMap<String, u64>,
}

impl Stats {
    pub fn parse(csv: &str) -> Self {
        let mut lines = csv.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else { return Self::default() };
        let columns: Vec<&str> = header.split(',').collect();
        let col = |name: &str| columns.iter().position(|c| *c == name);
        let (px, sv, status, scur, stot, req_tot) =
            (col("pxname"), col("svname"), col("status"), col("scur"), col("stot"), col("req_tot"));
        let mut stats = Self::default();
        for line in lines.filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split(',').collect();
            let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).copied().unwrap_or("");
            let num = |i: Option<usize>| get(i).parse::<u64>().unwrap_or(0);
            let (backend, server) = (get(px).to_owned(), get(sv).to_owned());
            match server.as_str() {
                "FRONTEND" => {}
                "BACKEND" => {
                    stats.backend_requests.insert(backend, num(req_tot));
                }
                _ => {
                    let stat = ServerStat { status: get(status).to_owned(), scur: num(scur), stot: num(stot) };
                    stats.servers.insert((backend, server), stat);
                }
            }
        }
        stats
    }

    pub fn server(&self, backend: &str, name: &str) -> Option<&ServerStat> {
        self.servers.get(&(backend.to_owned(), name.to_owned()))
    }
}

/// A running HAProxy and its runtime API.
pub struct Haproxy {
    child: Child,
    socket: PathBuf,
}

impl Haproxy {
    /// Writes the configuration, checks it (`haproxy -c`), starts HAProxy in the foreground and
    /// waits until the runtime API answers.
    pub async fn start(binary: &str, config: &LbConfig, dir: &std::path::Path) -> Result<Self, FleetError> {
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, config.render()).map_err(|e| FleetError::io(&cfg, e))?;
        let check = Command::new(binary).arg("-c").arg("-q").arg("-f").arg(&cfg).output().await;
        match check {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(FleetError::HaproxyConfig { stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
            }
            Err(source) => return Err(FleetError::HaproxyMissing { binary: binary.to_owned(), source }),
        }
        let log = dir.join("haproxy.log");
        let log_file = std::fs::File::create(&log).map_err(|e| FleetError::io(&log, e))?;
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| FleetError::io(&log, e))?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| FleetError::HaproxyStart { binary: binary.to_owned(), source })?;
        let lb = Self { child, socket: config.socket.clone() };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while lb.command("show info").await.is_err() {
            if tokio::time::Instant::now() > deadline {
                return Err(FleetError::RuntimeApi {
                    socket: config.socket.clone(),
                    detail: "no answer within 10 s of start".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(lb)
    }

    /// One runtime API command; its answer.
    pub async fn command(&self, line: &str) -> Result<String, FleetError> {
        let io = |e: std::io::Error| FleetError::RuntimeApi { socket: self.socket.clone(), detail: e.to_string() };
        let mut stream = UnixStream::connect(&self.socket).await.map_err(io)?;
        stream.write_all(format!("{line}\n").as_bytes()).await.map_err(io)?;
        let mut answer = String::new();
        // Bounded: the API answers within milliseconds; a stuck HAProxy must not stall the fleet.
        tokio::time::timeout(Duration::from_secs(5), stream.take(4 << 20).read_to_string(&mut answer))
            .await
            .map_err(|_| FleetError::RuntimeApi {
                socket: self.socket.clone(),
                detail: format!("no answer to {line:?}"),
            })?
            .map_err(io)?;
        Ok(answer)
    }

    /// A command that must succeed.
    pub async fn run(&self, line: &str) -> Result<(), FleetError> {
        let answer = self.command(line).await?;
        if is_error(&answer) {
            return Err(FleetError::RuntimeRefused { command: line.to_owned(), answer: answer.trim().to_owned() });
        }
        Ok(())
    }

    pub async fn stats(&self) -> Result<Stats, FleetError> {
        Ok(Stats::parse(&self.command("show stat").await?))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retries: bool) -> LbConfig {
        LbConfig {
            rest: "127.0.0.10:8000".parse().unwrap(),
            grpc: "127.0.0.10:50051".parse().unwrap(),
            socket: "/tmp/x.sock".into(),
            timing: Timing::scaled(0.1),
            retries,
        }
    }

    #[test]
    fn backends_use_a_dynamic_algorithm_and_check_gtg() {
        let text = config(false).render();
        // `add server` refuses backends with a static algorithm.
        assert_eq!(text.matches("balance roundrobin").count(), 2, "{text}");
        assert!(!text.contains("static-rr") && !text.contains("balance source"));
        assert_eq!(text.matches("option httpchk GET /gtg").count(), 2);
        assert_eq!(text.matches("http-check expect status 200").count(), 2);
        assert!(text.contains("level admin"), "add/del server need an admin socket");
        assert!(text.contains("timeout check 500ms"), "the health check timeout, scaled");
        assert_eq!(text.matches("retries 0").count(), 2, "no retries unless asked: {text}");
    }

    #[test]
    fn retries_are_for_gets_only() {
        let text = config(true).render();
        assert!(text.contains("http-request disable-l7-retry unless METH_GET"), "{text}");
        assert!(text.contains("option redispatch 1"));
        assert!(!text.contains("retries 0"));
    }

    #[test]
    fn added_servers_carry_their_own_check_settings_and_are_enabled() {
        let t = Timing::scaled(0.1);
        let lines = add_server_commands("grpc", "i11", "127.0.0.11:50051".parse().unwrap(), 8000, &t);
        // No default-server inheritance: interval, fall and rise on the line itself.
        assert_eq!(lines[0], "add server grpc/i11 127.0.0.11:50051 check port 8000 inter 1000ms fall 2 rise 3");
        // Health checks are off and the server in maintenance until enabled, in this order; then
        // it must earn `rise` good checks before it is routed to.
        assert_eq!(
            lines[1..],
            ["enable health grpc/i11", "enable server grpc/i11", "set server grpc/i11 health down"].map(String::from)
        );
        let line = add_server_line("grpc", "i11", "127.0.0.11:50051".parse().unwrap(), 8000, &t);
        assert_eq!(line.matches("; ").count(), 3, "one command line: {line}");
    }

    #[test]
    fn removal_goes_through_maintenance() {
        let lines = remove_server_commands("rest", "i11");
        assert_eq!(lines.first().unwrap(), "set server rest/i11 state maint");
        assert_eq!(lines.last().unwrap(), "del server rest/i11");
    }

    #[test]
    fn parses_show_stat() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,req_tot\n\
                   rest_in,FRONTEND,,,1,2,4096,10,0,0,0,0,0,,,,,OPEN,,10\n\
                   rest,i11,0,0,2,3,,7,0,0,,0,,0,0,0,0,UP,1,\n\
                   rest,i12,0,0,0,0,,3,0,0,,0,,0,0,0,0,DOWN 1/2,1,\n\
                   rest,BACKEND,0,0,2,3,410,10,0,0,0,0,,0,0,0,0,UP,2,9\n";
        let s = Stats::parse(csv);
        assert_eq!(s.server("rest", "i11").unwrap(), &ServerStat { status: "UP".into(), scur: 2, stot: 7 });
        assert!(s.server("rest", "i12").unwrap().status.starts_with("DOWN"));
        assert!(!s.server("rest", "i12").unwrap().is_up());
        assert_eq!(s.backend_requests["rest"], 9);
        assert!(is_error("No such server.") && !is_error("New server registered.\n") && !is_error("\n"));
    }
}
