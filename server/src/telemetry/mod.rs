//! Logging: `tracing` with a human format by default or one JSON object per line, on standard
//! output with the request lines buffered (`buffered`).

mod buffered;
mod clock;

use tracing_subscriber::{EnvFilter, fmt};

pub use buffered::flush;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` was checked by `Config::validate`. Call [`flush`]
/// before the process exits.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(buffered::BufferedStdout::get())
        .with_timer(clock::CachedUtc)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    // A panic's message goes to stderr; the request lines before it should not be lost with it.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
}
