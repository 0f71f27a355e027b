//! The access lines' formatter: the same text or JSON line tracing-subscriber writes for an event
//! of the `access` target, without its general machinery (a `Debug` call per value, a character
//! by character escape of the message, `serde` for JSON). An access line per request was about a
//! tenth of `/gtg`'s CPU in bench/profile.sh, most of it there; `python3 bench/plumbing.py` (variant
//! `formatter`) measures what it still saves: 0.91x `/gtg` and 0.87x GET with the library's. Every other event, an access event
//! inside a span (or with an explicit parent), and coloured output go to tracing-subscriber's own
//! formatter; a test checks that both write the same lines, with [`text`] and [`json`] configured
//! as the server configures them.
//!
//! Access events carry strings, integers, floats and booleans. An error value (`record_error`)
//! or a raw-identifier field name (`r#type`) would be written here as any `Debug` value and name,
//! not as tracing-subscriber writes them: do not put those on an access event.

use std::fmt::{self, Write};

use candidates_edge::observe::ACCESS_LOG;
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{self, Format, Full, Json, Writer},
        time::FormatTime,
    },
    registry::LookupSpan,
};

/// Formats access events itself and hands everything else to `inner`.
pub struct Access<F, T> {
    inner: F,
    timer: T,
    json: bool,
}

/// The server's text lines: tracing-subscriber's default format with `timer`.
pub fn text<T: FormatTime + Copy>(timer: T) -> Access<Format<Full, T>, T> {
    Access { inner: format::format().with_timer(timer), timer, json: false }
}

/// The server's JSON lines: one object per line, the event's fields at the top level, the current
/// span (if any) under `span`.
pub fn json<T: FormatTime + Copy>(timer: T) -> Access<Format<Json, T>, T> {
    let inner =
        format::format().with_timer(timer).json().flatten_event(true).with_current_span(true).with_span_list(false);
    Access { inner, timer, json: true }
}

impl<F, T> Access<F, T> {
    /// The same lines with another formatter for the events handed on (the tests show which).
    #[cfg(test)]
    fn handing_on_to<G>(self, inner: G) -> Access<G, T> {
        Access { inner, timer: self.timer, json: self.json }
    }

    /// The formatter events are handed to: the tests compare it with this one, and the bench build
    /// (`library-plumbing`) formats access lines with it.
    pub(super) fn inner(self) -> F {
        self.inner
    }
}

impl<S, N, F, T> FormatEvent<S, N> for Access<F, T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
    T: FormatTime,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let in_span = !event.is_contextual() || ctx.lookup_current().is_some();
        if meta.target() != ACCESS_LOG || writer.has_ansi_escapes() || in_span {
            return self.inner.format_event(ctx, writer, event);
        }
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            self.timer.format_time(&mut writer)?;
            writer.write_str("\",\"level\":\"")?;
            writer.write_str(meta.level().as_str())?;
            writer.write_char('"')?;
            let mut fields = JsonFields { writer: &mut writer, result: Ok(()) };
            event.record(&mut fields);
            fields.result?;
            writer.write_str(",\"target\":")?;
            json_str(&mut writer, meta.target())?;
            writer.write_str("}\n")
        } else {
            self.timer.format_time(&mut writer)?;
            writer.write_str(padded(meta.level()))?;
            writer.write_str(meta.target())?;
            writer.write_char(':')?;
            let mut fields = TextFields { writer: &mut writer, result: Ok(()) };
            event.record(&mut fields);
            fields.result?;
            writer.write_char('\n')
        }
    }
}

/// The level between the timestamp and the target, as tracing-subscriber pads it.
fn padded(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

/// `name=value` after a space each; strings quoted as `Debug` quotes them; the message bare.
struct TextFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(' ')?;
                if field.name() != "message" {
                    self.writer.write_str(field.name())?;
                    self.writer.write_char('=')?;
                }
                value(self.writer)
            })();
        }
    }
}

impl Visit for TextFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.field(field, |w| match (message, plain(value)) {
            (true, _) => TerminalSafe(w).write_str(value),
            (false, true) => {
                w.write_char('"')?;
                w.write_str(value)?;
                w.write_char('"')
            }
            (false, false) => write!(w, "{value:?}"),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w| write_f64(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message is the one value tracing-subscriber passes through its terminal escape.
        let message = field.name() == "message";
        self.field(field, |w| if message { write!(TerminalSafe(w), "{value:?}") } else { write!(w, "{value:?}") });
    }
}

/// `,"name":value` each, as tracing-subscriber's JSON with flattened events writes them.
struct JsonFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                json_str(self.writer, field.name())?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| json_str(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json writes them: ryu's shortest text where the two agree (latencies are there).
        self.field(field, |w| match ryu_agrees(value) {
            true => w.write_str(ryu::Buffer::new().format_finite(value)),
            false => w.write_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?),
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(JsonEscaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// Printable ASCII without quotes or backslashes: written as it is in both formats. Anything else
/// takes the general (slower, escaping) path.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

fn json_str(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    JsonEscaped(w).write_str(s)?;
    w.write_char('"')
}

/// Writes text as the inside of a JSON string, escaped as serde_json escapes it.
struct JsonEscaped<'a, 'w>(&'a mut Writer<'w>);

impl Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if plain(s) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                '\x08' => self.0.write_str("\\b")?,
                '\x0c' => self.0.write_str("\\f")?,
                c if c < ' ' => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Writes text with the control characters a terminal acts on escaped, as tracing-subscriber
/// escapes a message (its `EscapeGuard`).
struct TerminalSafe<'a, 'w>(&'a mut Writer<'w>);

impl Write for TerminalSafe<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.is_ascii() && !s.bytes().any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f)) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' => write!(self.0, "\\x{:02x}", c as u32)?,
                c if ('\u{80}'..='\u{9f}').contains(&c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `{:?}` of a float: ryu's shortest text where the two agree (latencies are there), else `{:?}`.
fn write_f64(w: &mut Writer<'_>, value: f64) -> fmt::Result {
    if ryu_agrees(value) { w.write_str(ryu::Buffer::new().format_finite(value)) } else { write!(w, "{value:?}") }
}

/// Where ryu writes a float as `{:?}` and serde_json do: without an exponent.
fn ryu_agrees(value: f64) -> bool {
    value == 0.0 || (1e-4..1e15).contains(&value.abs())
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use tracing_subscriber::fmt as tfmt;

    use super::*;

    /// A fixed time, so that two formatters' lines can be compared byte for byte.
    #[derive(Clone, Copy)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-02T10:20:30.123456Z")
        }
    }

    /// Stands for tracing-subscriber's formatter: shows which events `Access` hands on.
    struct HandedOn;

    impl<S, N> FormatEvent<S, N> for HandedOn
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, _: &Event<'_>) -> fmt::Result {
            w.write_str("handed on\n")
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// What tracing-subscriber writes for `emit`, and what `Access` (in front of `HandedOn`) does,
    /// each configured as the server configures it.
    fn both(json: bool, emit: impl Fn()) -> (String, String) {
        let (reference, fast) = (Captured::default(), Captured::default());
        let writer = |c: &Captured| {
            let c = c.clone();
            move || c.clone()
        };
        if json {
            let reference_sub = tfmt::fmt()
                .with_writer(writer(&reference))
                .with_ansi(false)
                .fmt_fields(format::JsonFields::new())
                .event_format(super::json(Fixed).inner())
                .finish();
            tracing::subscriber::with_default(reference_sub, &emit);
            let fast_sub = tfmt::fmt()
                .with_writer(writer(&fast))
                .with_ansi(false)
                .fmt_fields(format::JsonFields::new())
                .event_format(super::json(Fixed).handing_on_to(HandedOn))
                .finish();
            tracing::subscriber::with_default(fast_sub, &emit);
        } else {
            let reference_sub =
                tfmt::fmt().with_writer(writer(&reference)).with_ansi(false).event_format(text(Fixed).inner()).finish();
            tracing::subscriber::with_default(reference_sub, &emit);
            let fast_sub = tfmt::fmt()
                .with_writer(writer(&fast))
                .with_ansi(false)
                .event_format(text(Fixed).handing_on_to(HandedOn))
                .finish();
            tracing::subscriber::with_default(fast_sub, &emit);
        }
        (reference.text(), fast.text())
    }

    fn access_lines() {
        // As the two listeners write them.
        tracing::info!(target: ACCESS_LOG, method = "GET", path = "/candidate/x", request_id = "0b7c9e2a-5b8f-4c1e-9d3a-2f6e8a1b4c7d", status = 200u16, latency_ms = 0.123, "request");
        tracing::info!(target: ACCESS_LOG, rpc = "GetCandidate", request_id = "r-1", grpc_status = "14", latency_ms = 3000.0, "rpc");
        // Values a client controls, and every kind of value.
        for path in ["/a\"b\\c", "/\u{1b}[31mred", "/caf\u{e9}", "/c1\u{85}", "/tab\there\n", "/del\u{7f}"] {
            tracing::info!(target: ACCESS_LOG, path, "request");
        }
        tracing::warn!(target: ACCESS_LOG, n = -5i64, big = u64::MAX, yes = true, list = ?vec![1, 2], "odd {} message \u{1b}[0m", 1);
        tracing::info!(target: ACCESS_LOG, message = "a str message \u{7}\u{85}");
    }

    #[test]
    fn access_lines_are_the_lines_tracing_subscriber_writes() {
        for json in [false, true] {
            let (reference, fast) = both(json, access_lines);
            assert!(!fast.contains("handed on"), "an access line was handed on:\n{fast}");
            assert_eq!(fast, reference, "json: {json}");
            assert_eq!(fast.lines().count(), 10);
        }
    }

    #[test]
    fn latencies_read_as_tracing_subscriber_writes_them() {
        // Every microsecond-rounded latency from 0 to 20 s in coarse steps, and the edges of ryu's
        // agreement with `{:?}`.
        let mut values: Vec<f64> = (0..20_000_000u64).step_by(997).map(|us| us as f64 / 1e3).collect();
        values.extend([
            1e-4,
            9.99e-5,
            1e-5,
            1e15,
            1e16,
            1.5e17,
            -0.0,
            -2.5,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ]);
        for json in [false, true] {
            let (reference, fast) = both(json, || {
                for latency_ms in &values {
                    tracing::info!(target: ACCESS_LOG, latency_ms, "request");
                }
            });
            assert_eq!(fast.lines().count(), values.len());
            assert!(fast == reference, "json: {json}: {:?}", fast.lines().zip(reference.lines()).find(|(a, b)| a != b));
        }
    }

    #[test]
    fn other_lines_and_lines_in_a_span_or_with_a_parent_are_handed_on() {
        for json in [false, true] {
            let (_, fast) = both(json, || {
                tracing::warn!(request_id = "r-1", "store unavailable");
                tracing::info_span!("outer", id = 1)
                    .in_scope(|| tracing::info!(target: ACCESS_LOG, status = 200, "request"));
                let parent = tracing::info_span!("parent");
                tracing::info!(target: ACCESS_LOG, parent: &parent, status = 200, "request");
                tracing::info!(target: ACCESS_LOG, parent: None, status = 200, "request");
            });
            assert_eq!(fast, "handed on\n".repeat(4), "json: {json}");
        }
    }
}
