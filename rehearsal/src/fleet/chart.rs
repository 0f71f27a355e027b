//! The chart of a run (SVG, drawn with plotters): requests per second (offered, answered ok,
//! failed), latency p50/p99, and the instances starting / in service / draining, over time, with
//! the phases and events marked. `candidatectl chart` draws it again from a `timeline.json`, or
//! from the timeline of `candidatectl load --timeline` (no instances: two panels).

use std::path::Path;

use plotters::prelude::*;

use super::{group::Event, plan::Phase, report::Row};

/// A line: its legend, colour and value per row.
type Series = (&'static str, RGBColor, fn(&Row) -> f64);

/// The events worth a mark on the chart (launches and exits would crowd it).
fn marked(event: &Event) -> Option<String> {
    let w = &event.what;
    let keep =
        ["scale out", "scale in", "SIGKILL", "SIGSTOP", "SIGCONT", "instance refresh to", "instance refresh complete"];
    keep.iter().any(|k| w.starts_with(k)).then(|| {
        // Short labels: up to the first parenthesis.
        w.split(" (").next().unwrap_or(w).to_owned()
    })
}

pub fn draw(path: &Path, title: &str, rows: &[Row], phases: &[Phase], events: &[Event]) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|x| e(&x))?;
    // A load generator's timeline has no instances: two panels then.
    let with_instances = rows.iter().any(|r| r.in_service + r.starting + r.draining + r.desired > 0);
    let panels = root.split_evenly((if with_instances { 3 } else { 2 }, 1));
    // 12 % more room on the right for the legends, clear of the lines and the event labels.
    let x_max = rows.len().max(1) as f64 * 1.12;
    let marks: Vec<(f64, String)> = events.iter().filter_map(|ev| marked(ev).map(|m| (ev.t, m))).collect();

    // 1. Requests per second.
    let errors: fn(&Row) -> f64 = |r| r.load.errors.values().sum::<u64>() as f64;
    let y_max = rows.iter().map(|r| (r.load.offered as f64).max(r.load.achieved as f64)).fold(10.0, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(&panels[0])
        .margin(8)
        .x_label_area_size(20)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|x| e(&x))?;
    chart.configure_mesh().y_desc("req/s").light_line_style(WHITE.filled()).draw().map_err(|x| e(&x))?;
    for (i, phase) in phases.iter().enumerate() {
        let shade = if i % 2 == 0 { 0.03 } else { 0.08 };
        chart
            .draw_series([Rectangle::new([(phase.start, 0.0), (phase.end, y_max)], BLACK.mix(shade).filled())])
            .map_err(|x| e(&x))?;
        chart
            .draw_series([Text::new(
                phase.scenario.to_string(),
                (phase.start + 0.5, y_max * 0.97),
                ("sans-serif", 13).into_font(),
            )])
            .map_err(|x| e(&x))?;
    }
    let series: [Series; 3] = [
        ("offered", RGBColor(120, 120, 120), |r| r.load.offered as f64),
        ("answered ok", BLUE, |r| r.load.achieved as f64),
        ("failed", RED, errors),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(rows.iter().map(|r| (r.load.t as f64 + 0.5, value(r))), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for (i, (t, label)) in marks.iter().enumerate() {
        chart
            .draw_series([PathElement::new(vec![(*t, 0.0), (*t, y_max)], BLACK.mix(0.35).stroke_width(1))])
            .map_err(|x| e(&x))?;
        // Labels staggered so that neighbours do not overlap.
        let y = y_max * (0.88 - 0.07 * (i % 4) as f64);
        chart
            .draw_series([Text::new(label.clone(), (*t + 0.3, y), ("sans-serif", 11).into_font())])
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.85).filled())
        .border_style(BLACK.mix(0.3).stroke_width(1))
        .draw()
        .map_err(|x| e(&x))?;

    // 2. Latency.
    let l_max = rows.iter().map(|r| r.load.p99_ms).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&panels[1])
        .margin(8)
        .x_label_area_size(20)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..l_max)
        .map_err(|x| e(&x))?;
    chart.configure_mesh().y_desc("latency ms").light_line_style(WHITE.filled()).draw().map_err(|x| e(&x))?;
    for (label, color, value) in [
        ("p50", GREEN, (|r: &Row| r.load.p50_ms) as fn(&Row) -> f64),
        ("p99", MAGENTA, (|r: &Row| r.load.p99_ms) as fn(&Row) -> f64),
    ] {
        chart
            .draw_series(LineSeries::new(
                rows.iter().filter(|r| r.load.offered > 0).map(|r| (r.load.t as f64 + 0.5, value(r))),
                color.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for (t, _) in &marks {
        chart
            .draw_series([PathElement::new(vec![(*t, 0.0), (*t, l_max)], BLACK.mix(0.35).stroke_width(1))])
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85).filled())
        .border_style(BLACK.mix(0.3).stroke_width(1))
        .draw()
        .map_err(|x| e(&x))?;

    if !with_instances {
        root.present().map_err(|x| e(&x))?;
        return Ok(());
    }

    // 3. Instances.
    let i_max = rows.iter().map(|r| r.in_service + r.starting + r.draining).max().unwrap_or(1).max(r_desired(rows))
        as f64
        + 1.0;
    let mut chart = ChartBuilder::on(&panels[2])
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..i_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .y_desc("instances")
        .x_desc("seconds")
        .light_line_style(WHITE.filled())
        .draw()
        .map_err(|x| e(&x))?;
    // Desired first, a little above, so that the in-service line on top stays visible.
    let steps: [Series; 4] = [
        ("desired", RGBColor(150, 150, 150), |r| r.desired as f64 + 0.06),
        ("in service", BLUE, |r| r.in_service as f64),
        ("starting", GREEN, |r| r.starting as f64),
        ("draining", RED, |r| r.draining as f64),
    ];
    for (label, color, value) in steps {
        // A step line: the count holds for the whole second.
        let points = rows.iter().flat_map(|r| [(r.load.t as f64, value(r)), (r.load.t as f64 + 1.0, value(r))]);
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    for (t, _) in &marks {
        chart
            .draw_series([PathElement::new(vec![(*t, 0.0), (*t, i_max)], BLACK.mix(0.35).stroke_width(1))])
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85).filled())
        .border_style(BLACK.mix(0.3).stroke_width(1))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Draws `output` from a `timeline.json` of `candidatectl fleet` (the whole document) or of
/// `candidatectl load --timeline` (an array of rows).
pub fn redraw(input: &Path, output: &Path, title: Option<String>) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct PhaseJson {
        scenario: super::plan::Scenario,
        start: f64,
        end: f64,
    }
    #[derive(serde::Deserialize)]
    struct Document {
        timeline: Vec<Row>,
        #[serde(default)]
        phases: Vec<PhaseJson>,
        #[serde(default)]
        events: Vec<Event>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Input {
        Fleet(Document),
        Load(Vec<Row>),
    }
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let parsed: Input = serde_json::from_str(&text).map_err(|e| format!("{}: not a timeline: {e}", input.display()))?;
    let (rows, phases, events) = match parsed {
        Input::Fleet(d) => {
            let phases = d
                .phases
                .into_iter()
                .map(|p| Phase { scenario: p.scenario, start: p.start, end: p.end, hold: None })
                .collect();
            (d.timeline, phases, d.events)
        }
        Input::Load(rows) => (rows, Vec::new(), Vec::new()),
    };
    let title = title.unwrap_or_else(|| input.display().to_string());
    draw(output, &title, &rows, &phases, &events)
}

fn r_desired(rows: &[Row]) -> usize {
    rows.iter().map(|r| r.desired).max().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::plan::Scenario;

    #[test]
    fn draws_an_svg_with_the_phases_and_events() {
        let row = |t: u64, in_service: usize| Row {
            load: candidates_clients::load::Row {
                t,
                offered: 100,
                achieved: 98,
                errors: [("rest get 503".to_owned(), 2)].into(),
                p50_ms: 3.0,
                p99_ms: 40.0,
                max_ms: 60.0,
            },
            starting: 0,
            in_service,
            draining: 0,
            desired: in_service,
            lb_rest_rps: 60.0,
            grpc_instances: in_service,
            events: vec![],
        };
        let rows: Vec<Row> = (0..20).map(|t| row(t, if t < 10 { 2 } else { 3 })).collect();
        let phases = [Phase { scenario: Scenario::Scale, start: 0.0, end: 20.0, hold: None }];
        let events = [
            Event { t: 9.5, what: "scale out 2→3 (LB 70 req/s, target 30/instance)".into() },
            Event { t: 9.6, what: "launch i3 (v1) on 127.0.0.13: capacity below desired".into() },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        draw(&path, "test run", &rows, &phases, &events).unwrap();
        // A load timeline (no instances) redrawn from its JSON: two panels.
        let load = dir.path().join("load.json");
        let plain: Vec<Row> = rows.iter().map(|r| Row { in_service: 0, desired: 0, ..r.clone() }).collect();
        std::fs::write(&load, serde_json::to_string(&plain).unwrap()).unwrap();
        let two = dir.path().join("two.svg");
        redraw(&load, &two, None).unwrap();
        let svg = std::fs::read_to_string(&two).unwrap();
        assert!(svg.contains("answered ok") && !svg.contains("in service"), "{svg:.200}");
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{:.100}", svg);
        for text in ["test run", "scale", "scale out 2→3", "answered ok", "p99", "in service"] {
            assert!(svg.contains(text), "{text:?} missing");
        }
        assert!(!svg.contains("launch i3"), "launches are not marked: they would crowd the chart");
    }
}
