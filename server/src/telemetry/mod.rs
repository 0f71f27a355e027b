//! Logging: `tracing` with a human format by default or one JSON object per line, on standard
//! output with the request lines buffered (`buffered`).
//!
//! Two parts here are hand-built for speed: the access lines' formatter (`access`) and their buffer
//! (`buffered`). Each is kept because `python3 bench/plumbing.py` shows its gain over the library
//! part it replaces (docs/performance.md has today's figures). A build with the feature
//! `library-plumbing` swaps either for the library's at run time, for that bench.

mod access;
mod buffered;
pub mod otlp;

use tracing_subscriber::{
    EnvFilter,
    fmt::{self, MakeWriter, format::JsonFields, time::SystemTime},
};

pub use buffered::flush;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` was checked by `Config::validate`. Call [`flush`]
/// before the process exits.
pub fn init(format: LogFormat, filter: &str) {
    #[cfg(feature = "library-plumbing")]
    {
        use candidates_gateway::layers::library_plumbing as library;
        let formatter = !library("formatter");
        if library("appender") {
            // tracing-appender's background thread; the guard that flushes it lives as long as
            // the process.
            let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
            std::mem::forget(guard);
            install(format, filter, writer, formatter);
        } else if library("writer") {
            install(format, filter, std::io::stdout, formatter);
        } else {
            install(format, filter, buffered::BufferedStdout::get(), formatter);
        }
    }
    #[cfg(not(feature = "library-plumbing"))]
    install(format, filter, buffered::BufferedStdout::get(), true);
    // A panic's message goes to stderr; the request lines before it should not be lost with it.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
}

/// The subscriber with `writer`, and the access lines formatted by `access` (or, with
/// `fast_access` false, by tracing-subscriber's formatter like every other line).
fn install<W>(format: LogFormat, filter: &str, writer: W, fast_access: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // tracing-subscriber's own clock (RFC 3339, UTC, microseconds): a per-thread cache of the
    // formatted second measured no faster in bench/plumbing.py (1.01x), so it went.
    let timer = SystemTime;
    // Colours only for text on a terminal: journald and log files get plain text, and JSON never
    // has any.
    let ansi = matches!(format, LogFormat::Text) && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match (format, fast_access) {
        (LogFormat::Text, true) => builder.event_format(access::text(timer)).init(),
        (LogFormat::Text, false) => builder.event_format(access::text(timer).inner()).init(),
        (LogFormat::Json, true) => builder.fmt_fields(JsonFields::new()).event_format(access::json(timer)).init(),
        (LogFormat::Json, false) => {
            builder.fmt_fields(JsonFields::new()).event_format(access::json(timer).inner()).init();
        }
    }
}
