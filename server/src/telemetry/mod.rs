//! Logging: `tracing` with a human format by default or one JSON object per line, on standard
//! output with the request lines buffered (`buffered`).

mod access;
mod buffered;
mod clock;

use tracing_subscriber::{EnvFilter, fmt, fmt::format::JsonFields};

pub use buffered::flush;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` was checked by `Config::validate`. Call [`flush`]
/// before the process exits.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for text on a terminal: journald and log files get plain text, and JSON never
    // has any.
    let ansi = matches!(format, LogFormat::Text) && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt().with_env_filter(filter).with_writer(buffered::BufferedStdout::get()).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.event_format(access::text(clock::CachedUtc)).init(),
        LogFormat::Json => builder.fmt_fields(JsonFields::new()).event_format(access::json(clock::CachedUtc)).init(),
    }
    // A panic's message goes to stderr; the request lines before it should not be lost with it.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
}
