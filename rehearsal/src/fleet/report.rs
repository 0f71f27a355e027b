//! The rehearsal's report: one row per second (load, latency, errors, instances, events), a
//! summary per phase, and the bars each scenario must meet, evaluated from what was measured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    group::{Drained, Event, Kill, Snapshot},
    plan::{Phase, Scenario},
    probe::StallProbes,
};
use candidates_clients::{
    load::{Row as LoadRow, Timeline},
    output,
};

/// One second of the run: the load generator's row (its fields, flattened, so the JSON is one flat
/// object per second) and the group's. Read back by `candidates-rehearsal chart`, also from a
/// load generator's timeline, which has only the load's fields (the rest default to zero).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Row {
    #[serde(flatten)]
    pub load: LoadRow,
    pub starting: usize,
    pub in_service: usize,
    pub draining: usize,
    pub desired: usize,
    /// The scaling metric: REST req/s through the load balancer.
    pub lb_rest_rps: f64,
    /// In-service instances with gRPC connections (the L4 balancer spreads connections, not calls).
    pub grpc_instances: usize,
    pub events: Vec<String>,
}

/// A bar and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub scenario: Scenario,
    pub bar: String,
    pub pass: bool,
    pub measured: String,
}

/// What happened around the store stall.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stall {
    pub stopped_at: f64,
    pub resumed_at: f64,
    pub probes: StallProbes,
    /// Instances that exited or were replaced during the phase.
    pub restarts: Vec<String>,
}

/// Everything measured, for the bars, the JSON and the chart.
pub struct Measured<'a> {
    pub phases: &'a [Phase],
    pub timeline: &'a Timeline,
    pub snapshots: &'a [Snapshot],
    pub events: &'a [Event],
    pub kills: &'a [Kill],
    pub drained: &'a [Drained],
    pub stall: Option<&'a Stall>,
    pub target: f64,
    pub warmup: f64,
    pub cooldown: f64,
    pub metric_period: f64,
    pub deadline_ms: f64,
    pub retries: bool,
    pub rest_share: f64,
}

pub fn rows(m: &Measured) -> Vec<Row> {
    let load = m.timeline.rows();
    let n = load.len().max(m.snapshots.len());
    (0..n)
        .map(|t| {
            let l = load.get(t);
            let s = m.snapshots.get(t).copied().unwrap_or_default();
            Row {
                load: LoadRow { t: t as u64, ..l.cloned().unwrap_or_default() },
                starting: s.starting,
                in_service: s.in_service,
                draining: s.draining,
                desired: s.desired,
                lb_rest_rps: (s.lb_rate * 10.0).round() / 10.0,
                grpc_instances: s.grpc_instances,
                events: m.events.iter().filter(|e| e.t.max(0.0) as u64 == t as u64).map(|e| e.what.clone()).collect(),
            }
        })
        .collect()
}

fn window(m: &Measured, from: f64, to: f64) -> (hdrhistogram::Histogram<u32>, BTreeMap<String, u64>, u64) {
    m.timeline.window(from.floor() as u64, to.ceil() as u64)
}

fn failed(errors: &BTreeMap<String, u64>) -> u64 {
    errors.values().sum()
}

fn errors_text(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".into();
    }
    errors.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

pub fn bars(m: &Measured, rows: &[Row]) -> Vec<Bar> {
    let mut out = Vec::new();
    for phase in m.phases {
        let (_, errors, offered) = window(m, phase.start, phase.end);
        let view = PhaseView { m, rows, phase, errors: &errors, offered };
        match phase.scenario {
            Scenario::Scale => scale_bars(&view, &mut out),
            Scenario::Rolling => rolling_bars(&view, &mut out),
            Scenario::Kill => kill_bars(&view, &mut out),
            Scenario::Stall => stall_bars(&view, &mut out),
        }
    }
    out
}

/// What every scenario's bars read: the run, its rows, and this phase's window.
struct PhaseView<'a> {
    m: &'a Measured<'a>,
    rows: &'a [Row],
    phase: &'a Phase,
    errors: &'a BTreeMap<String, u64>,
    offered: u64,
}

impl PhaseView<'_> {
    /// The phase's events whose text starts with `prefix`.
    fn events_in(&self, prefix: &str) -> Vec<&Event> {
        let phase = self.phase;
        self.m.events.iter().filter(|e| e.t >= phase.start && e.t < phase.end && e.what.starts_with(prefix)).collect()
    }
}

/// The scale scenario's bars.
fn scale_bars(view: &PhaseView, out: &mut Vec<Bar>) {
    let PhaseView { m, rows, phase, errors, offered } = *view;
    let events_in = |prefix: &str| view.events_in(prefix);
    let mut bar = |scenario, bar: &str, pass: bool, measured: String| {
        out.push(Bar { scenario, bar: bar.into(), pass, measured });
    };
    // When the offered load first asked for more than the group had: the REST share
    // of the requests sent in a second above target × instances in service.
    let over = rows
        .iter()
        .filter(|r| (r.load.t as f64) >= phase.start && (r.load.t as f64) < phase.end)
        .find(|r| r.in_service > 0 && r.load.offered as f64 * m.rest_share > m.target * r.in_service as f64);
    let first_out = events_in("scale out").first().map(|e| e.t);
    let allowed = m.warmup + m.cooldown + m.metric_period + 1.0;
    match (over, first_out) {
        (Some(over), Some(out_t)) => {
            let delay = out_t - over.load.t as f64;
            bar(
                Scenario::Scale,
                "scale-out within warm-up + cooldown (+ the metric period) of the load passing the target",
                delay <= allowed,
                format!(
                    "{delay:.1} s after the offered REST load passed {:.0}/instance (allowed {allowed:.1} s)",
                    m.target
                ),
            );
        }
        (over, out_t) => bar(
            Scenario::Scale,
            "scale-out within warm-up + cooldown (+ the metric period) of the load passing the target",
            false,
            format!("load over target: {}; scale-out: {}", over.is_some(), out_t.is_some()),
        ),
    }
    if let Some((from, to)) = phase.hold {
        // The second half of the hold: after the scale-out had time to act.
        let from = (from + to) / 2.0;
        let held: Vec<&Row> =
            rows.iter().filter(|r| (r.load.t as f64) >= from && ((r.load.t + 1) as f64) <= to).collect();
        let offered: u64 = held.iter().map(|r| r.load.offered).sum();
        let achieved: u64 = held.iter().map(|r| r.load.achieved).sum();
        let ratio = if offered == 0 { 0.0 } else { achieved as f64 / offered as f64 };
        bar(
            Scenario::Scale,
            "achieved req/s follows the offered load at the peak (≥ 95 %)",
            ratio >= 0.95,
            format!("{achieved} of {offered} answered ok in the second half of the hold ({:.1} %)", ratio * 100.0),
        );
    }
    let scale_ins = events_in("scale in");
    let peak = rows
        .iter()
        .filter(|r| (r.load.t as f64) >= phase.start && (r.load.t as f64) < phase.end)
        .map(|r| r.in_service)
        .max()
        .unwrap_or(0);
    let end = rows.iter().rfind(|r| ((r.load.t + 1) as f64) <= phase.end).map_or(0, |r| r.in_service);
    bar(
        Scenario::Scale,
        "scale-in after the load falls",
        !scale_ins.is_empty() && end < peak,
        format!("{} scale-in decision(s); in service: peak {peak}, at the end {end}", scale_ins.len()),
    );
    bar(
        Scenario::Scale,
        "0 failed requests through scale-out and scale-in",
        failed(errors) == 0 && offered > 0,
        format!("{} failed of {offered} ({})", failed(errors), errors_text(errors)),
    );
}

/// The rolling scenario's bars.
fn rolling_bars(view: &PhaseView, out: &mut Vec<Bar>) {
    let PhaseView { m, rows: _, phase: _, errors, offered } = *view;
    let events_in = |prefix: &str| view.events_in(prefix);
    let mut bar = |scenario, bar: &str, pass: bool, measured: String| {
        out.push(Bar { scenario, bar: bar.into(), pass, measured });
    };
    let refreshed: Vec<&Drained> = m.drained.iter().filter(|d| d.why == "instance refresh").collect();
    let complete = events_in("instance refresh complete");
    bar(
        Scenario::Rolling,
        "every instance replaced, new one first",
        !complete.is_empty() && refreshed.len() >= 3,
        format!("{} replaced; refresh complete: {}", refreshed.len(), !complete.is_empty()),
    );
    let codes: Vec<String> = refreshed
        .iter()
        .map(|d| format!("{}={}", d.name, d.exit_code.map_or("running".into(), |c| c.to_string())))
        .collect();
    bar(
        Scenario::Rolling,
        "every old instance exits 0",
        !refreshed.is_empty() && refreshed.iter().all(|d| d.exit_code == Some(0)),
        codes.join(" "),
    );
    bar(
        Scenario::Rolling,
        "0 failed requests (REST + gRPC)",
        failed(errors) == 0 && offered > 0,
        format!("{} failed of {offered} ({})", failed(errors), errors_text(errors)),
    );
}

/// The kill scenario's bars.
fn kill_bars(view: &PhaseView, out: &mut Vec<Bar>) {
    let PhaseView { m, rows, phase, errors: _, offered: _ } = *view;
    let events_in = |prefix: &str| view.events_in(prefix);
    let mut bar = |scenario, bar: &str, pass: bool, measured: String| {
        out.push(Bar { scenario, bar: bar.into(), pass, measured });
    };
    for kill in m.kills.iter().filter(|k| k.at >= phase.start && k.at < phase.end) {
        let (_, errors, _) = window(m, kill.at, phase.end);
        let sum = |prefix: &str| errors.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<u64>();
        let (rest_failed, grpc_failed) = (sum("rest "), sum("grpc "));
        let ejected = kill.ejected_after;
        bar(
            Scenario::Kill,
            "the load balancer ejects the dead instance",
            ejected.is_some(),
            format!("{} ejected {} after SIGKILL", kill.name, ejected.map_or("never".into(), |s| format!("{s:.2} s"))),
        );
        let rest_bound = kill.rest_in_flight + kill.rest_sent_before_ejection.unwrap_or(0);
        bar(
            Scenario::Kill,
            "REST failures ≤ requests in flight on it + requests the LB sent to it before ejecting it",
            ejected.is_some() && rest_failed <= rest_bound,
            format!(
                "{rest_failed} failed ≤ {} in flight + {} sent before ejection",
                kill.rest_in_flight,
                kill.rest_sent_before_ejection.unwrap_or(0)
            ),
        );
        // The load generator cannot tell which instance a gRPC call reached: every call in
        // flight at the kill plus every call sent until the ejection bounds it from above.
        let grpc_sent: u64 = ejected.map_or(0, |e| {
            let (_, _, sent) = window(m, kill.at, kill.at + e + 1.0);
            (sent as f64 * (1.0 - m.rest_share)).ceil() as u64
        });
        let grpc_bound = kill.grpc_client_in_flight + grpc_sent;
        bar(
            Scenario::Kill,
            "gRPC failures ≤ calls in flight + calls sent before ejection",
            ejected.is_some() && grpc_failed <= grpc_bound,
            format!(
                "{grpc_failed} failed ≤ {} in flight + ~{grpc_sent} sent before ejection ({} gRPC connections on it)",
                kill.grpc_client_in_flight, kill.grpc_connections
            ),
        );
        if m.retries {
            let gets = sum("rest get ");
            bar(
                Scenario::Kill,
                "with HAProxy retries: 0 failed REST GETs",
                gets == 0,
                format!("{gets} failed REST GETs ({})", errors_text(&errors)),
            );
        }
    }
    let healed = events_in("launch").iter().any(|e| e.what.contains("capacity below desired"));
    let back = rows.iter().rfind(|r| ((r.load.t + 1) as f64) <= phase.end).map_or(0, |r| r.in_service);
    bar(
        Scenario::Kill,
        "autohealing launches a replacement",
        healed,
        format!("replacement launched: {healed}; in service at the end: {back}"),
    );
}

/// The stall scenario's bars.
fn stall_bars(view: &PhaseView, out: &mut Vec<Bar>) {
    let PhaseView { m, rows, phase, errors: _, offered: _ } = *view;
    let mut bar = |scenario, bar: &str, pass: bool, measured: String| {
        out.push(Bar { scenario, bar: bar.into(), pass, measured });
    };
    let Some(stall) = m.stall else { return };
    let (latency, errors, _) = window(m, stall.stopped_at, phase.end);
    let max_ms = latency.max() as f64 / 1e3;
    let gave_up = errors.iter().filter(|(k, _)| k.ends_with("client_gave_up")).map(|(_, v)| v).sum::<u64>();
    // Timers and scheduling on a busy two-core machine: 10 % of the deadline, at least
    // 250 ms.
    let slack = (m.deadline_ms * 0.1).max(250.0);
    bar(
        Scenario::Stall,
        "no request waits past its deadline",
        max_ms <= m.deadline_ms + slack && gave_up == 0,
        format!(
            "max latency {max_ms:.0} ms (deadline {:.0} ms + {slack:.0} ms slack); {gave_up} abandoned by the client; errors: {}",
            m.deadline_ms,
            errors_text(&errors)
        ),
    );
    let saw = stall.probes.details_503(stall.stopped_at, stall.resumed_at);
    bar(
        Scenario::Stall,
        "/gtg?details turns 503 during the stall",
        saw,
        format!("answers during the stall: {:?}", stall.probes.details_statuses(stall.stopped_at, stall.resumed_at)),
    );
    // Two views: the 100 ms probes through the load balancer, and (to the second) the
    // last second of the phase in which a load request sent after SIGCONT failed.
    let probes = stall.probes.recovery(stall.resumed_at);
    let last_failure = rows
        .iter()
        .filter(|r| {
            (r.load.t as f64) + 1.0 > stall.resumed_at && (r.load.t as f64) < phase.end && !r.load.errors.is_empty()
        })
        .map(|r| r.load.t)
        .max();
    let load = last_failure.map_or(0.0, |t| (t as f64 + 1.0 - stall.resumed_at).max(0.0));
    let recovery = probes.map(|p| p.max(load));
    bar(
        Scenario::Stall,
        "recovery within 5 s of SIGCONT",
        recovery.is_some_and(|r| r <= 5.0),
        match probes {
            None => "GETs through the LB never succeeded again".into(),
            Some(p) => format!(
                "{:.2} s (probes every 100 ms: {p:.2} s; load: {})",
                recovery.unwrap_or(p),
                last_failure.map_or("no failure after SIGCONT".into(), |t| format!(
                    "last failures in second {t}, ≤ {load:.2} s"
                ))
            ),
        },
    );
    bar(
        Scenario::Stall,
        "no restart",
        stall.restarts.is_empty(),
        if stall.restarts.is_empty() { "none".into() } else { stall.restarts.join(", ") },
    );
}

/// The per-phase table for the terminal.
pub fn phase_table(m: &Measured, rows: &[Row]) -> String {
    let header = [
        "phase",
        "seconds",
        "sent",
        "failed",
        "ok req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "in service",
        "with gRPC",
        "errors",
    ];
    let lines = m.phases.iter().map(|p| {
        let (latency, errors, offered) = window(m, p.start, p.end);
        let in_phase: Vec<&Row> =
            rows.iter().filter(|r| (r.load.t as f64) >= p.start && (r.load.t as f64) < p.end).collect();
        let achieved: u64 = in_phase.iter().map(|r| r.load.achieved).sum();
        let (lo, hi) =
            in_phase.iter().fold((usize::MAX, 0), |(lo, hi), r| (lo.min(r.in_service), hi.max(r.in_service)));
        let q = |q: f64| if latency.is_empty() { 0.0 } else { latency.value_at_quantile(q) as f64 / 1e3 };
        [
            p.scenario.to_string(),
            format!("{:.0}–{:.0}", p.start, p.end),
            offered.to_string(),
            failed(&errors).to_string(),
            format!("{:.0}", achieved as f64 / (p.end - p.start).max(1.0)),
            format!("{:.1}", q(0.5)),
            format!("{:.1}", q(0.99)),
            format!("{:.0}", latency.max() as f64 / 1e3),
            if lo == usize::MAX { "-".into() } else { format!("{lo}–{hi}") },
            in_phase.iter().map(|r| r.grpc_instances).max().unwrap_or(0).to_string(),
            errors_text(&errors),
        ]
    });
    output::table(&header, lines).to_string()
}

pub fn bar_table(bars: &[Bar]) -> String {
    let lines = bars.iter().map(|b| {
        [if b.pass { "PASS" } else { "FAIL" }.to_owned(), b.scenario.to_string(), b.bar.clone(), b.measured.clone()]
    });
    output::table(&["", "scenario", "bar", "measured"], lines).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fleet::probe::Probe;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn phase(scenario: Scenario, start: f64, end: f64) -> Phase {
        Phase { scenario, start, end, hold: None }
    }

    fn measured<'a>(
        phases: &'a [Phase],
        timeline: &'a Timeline,
        kills: &'a [Kill],
        drained: &'a [Drained],
        stall: Option<&'a Stall>,
        events: &'a [Event],
    ) -> Measured<'a> {
        Measured {
            phases,
            timeline,
            snapshots: &[],
            events,
            kills,
            drained,
            stall,
            target: 30.0,
            warmup: 3.0,
            cooldown: 3.0,
            metric_period: 3.0,
            deadline_ms: 2000.0,
            retries: false,
            rest_share: 0.6,
        }
    }

    fn bar<'a>(bars: &'a [Bar], text: &str) -> &'a Bar {
        bars.iter().find(|b| b.bar.contains(text)).unwrap_or_else(|| panic!("no bar {text:?} in {bars:?}"))
    }

    fn drained(name: &str, exit_code: i32) -> Drained {
        Drained {
            name: name.into(),
            version: "v1".into(),
            why: "instance refresh".into(),
            exit_code: Some(exit_code),
            took: Some(1.0),
        }
    }

    #[test]
    fn rolling_fails_on_one_failed_request_or_one_bad_exit() {
        let phases = [phase(Scenario::Rolling, 0.0, 10.0)];
        let events = [Event { t: 9.0, what: "instance refresh complete: 3 replaced".into() }];
        let ok = [drained("i1", 0), drained("i2", 0), drained("i3", 0)];
        let mut clean = Timeline::default();
        for i in 0..100 {
            clean.record(ms(i * 90), ms(5), None);
        }
        let bars_ok = bars(&measured(&phases, &clean, &[], &ok, None, &events), &[]);
        assert!(bars_ok.iter().all(|b| b.pass), "{bars_ok:?}");

        let mut one_error = clean.clone();
        one_error.record(ms(5000), ms(5), Some("grpc get Unavailable"));
        let b = bars(&measured(&phases, &one_error, &[], &ok, None, &events), &[]);
        assert!(!bar(&b, "0 failed requests").pass);

        let killed = [drained("i1", 0), drained("i2", 1), drained("i3", 0)];
        let b = bars(&measured(&phases, &clean, &[], &killed, None, &events), &[]);
        assert!(!bar(&b, "exits 0").pass, "{b:?}");
    }

    #[test]
    fn scale_out_fails_when_it_comes_later_than_warmup_plus_cooldown() {
        let phases = [Phase { scenario: Scenario::Scale, start: 0.0, end: 40.0, hold: None }];
        // 2 instances; from second 5 the REST share (0.6 × 150 = 90) is over 2 × 30.
        let rows: Vec<Row> = (0..40)
            .map(|t| Row {
                load: LoadRow { t, offered: if t < 5 { 50 } else { 150 }, ..LoadRow::default() },
                in_service: if t < 30 { 2 } else { 3 },
                ..Row::default()
            })
            .collect();
        let t = Timeline::default();
        let check = |out_at: f64| {
            let events = [
                Event { t: out_at, what: "scale out 2→3 (LB 90 req/s, target 30/instance)".into() },
                Event { t: 35.0, what: "scale in 3→2".into() },
            ];
            let b = bars(&measured(&phases, &t, &[], &[], None, &events), &rows);
            bar(&b, "scale-out within").pass
        };
        // Allowed: warm-up 3 + cooldown 3 + metric period 3 + 1 s.
        assert!(check(9.0));
        assert!(!check(16.0));
    }

    #[test]
    fn kill_fails_when_failures_exceed_what_was_on_the_instance() {
        let phases = [phase(Scenario::Kill, 0.0, 10.0)];
        let kill = |rest_sent| Kill {
            name: "i1".into(),
            at: 1.0,
            rest_in_flight: 2,
            grpc_connections: 1,
            grpc_client_in_flight: 0,
            ejected_after: Some(1.0),
            rest_sent_before_ejection: Some(rest_sent),
            grpc_connections_before_ejection: Some(0),
            rest_stot: 0,
            grpc_stot: 0,
        };
        let mut t = Timeline::default();
        for i in 0..5 {
            t.record(ms(1500 + i), ms(1), Some("rest get 503"));
        }
        // 5 failures: within 2 in flight + 3 sent, not within 2 + 2.
        let b = bars(&measured(&phases, &t, &[kill(3)], &[], None, &[]), &[]);
        assert!(bar(&b, "REST failures").pass, "{b:?}");
        let b = bars(&measured(&phases, &t, &[kill(2)], &[], None, &[]), &[]);
        assert!(!bar(&b, "REST failures").pass, "{b:?}");
        // Never ejected: fails whatever the count.
        let mut never = kill(100);
        never.ejected_after = None;
        let b = bars(&measured(&phases, &t, &[never], &[], None, &[]), &[]);
        assert!(!bar(&b, "ejects").pass && !bar(&b, "REST failures").pass);
    }

    #[test]
    fn stall_fails_past_the_deadline_without_503_or_without_recovery() {
        let phases = [phase(Scenario::Stall, 0.0, 12.0)];
        let probe = |t: f64, ok: bool, status: &str| Probe { t, ok, status: status.into(), ms: 1.0 };
        let mut stall = Stall {
            stopped_at: 2.0,
            resumed_at: 5.0,
            probes: StallProbes {
                lb_get: vec![
                    probe(4.0, false, "503"),
                    probe(5.5, false, "503"),
                    probe(6.0, true, "200"),
                    probe(7.0, true, "200"),
                ],
                details: [("i1".to_owned(), vec![probe(3.0, false, "503")])].into(),
            },
            restarts: vec![],
        };
        let mut t = Timeline::default();
        t.record(ms(2500), ms(2100), Some("rest get 504"));
        let b = bars(&measured(&phases, &t, &[], &[], Some(&stall), &[]), &[]);
        assert!(b.iter().all(|b| b.pass), "{b:?}");

        let mut late = t.clone();
        late.record(ms(2600), ms(4000), Some("rest get 504"));
        let b = bars(&measured(&phases, &late, &[], &[], Some(&stall), &[]), &[]);
        assert!(!bar(&b, "deadline").pass);

        stall.probes.details.insert("i1".into(), vec![probe(3.0, false, "timeout")]);
        stall.probes.lb_get.push(probe(11.0, false, "503"));
        stall.restarts.push("i1 gone".into());
        let b = bars(&measured(&phases, &t, &[], &[], Some(&stall), &[]), &[]);
        assert!(!bar(&b, "turns 503").pass && !bar(&b, "recovery").pass && !bar(&b, "no restart").pass, "{b:?}");
    }
}
