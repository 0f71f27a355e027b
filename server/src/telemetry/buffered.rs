//! Standard output with a buffer for the per-request lines, like nginx's `access_log ... buffer=
//! flush=`: the access lines (target `access`, INFO) are gathered and written with one `write` when
//! the buffer fills or [`FLUSH_EVERY`] has passed; any other line (start, drain, warnings, errors)
//! first writes out what is buffered, then itself, at once, so nothing but request lines waits and
//! the order of lines is kept. `python3 bench/plumbing.py` measures it against tracing-subscriber's
//! writer (a write per line: 0.88x `/gtg` and GET) and tracing-appender's background thread (0.90x).
//!
//! Buffered lines are written at exit ([`flush`] in `main`, and the panic hook); a `kill -9`
//! loses at most [`FLUSH_EVERY`] of request lines, never any other line.

use std::{
    io::{self, Write},
    sync::{Mutex, OnceLock, PoisonError},
    time::Duration,
};

use candidates_edge::observe::ACCESS_LOG;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Written once this much is buffered (about 300 request lines); bounds the buffer's memory.
pub const CAPACITY: usize = 64 * 1024;
/// The longest a request line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The process's one buffer: the flusher thread, the panic hook and `main` reach it here.
static BUFFER: OnceLock<Buffer> = OnceLock::new();

/// Where the lines go: standard output in the server, anything in the tests.
type Sink = Box<dyn Write + Send>;

struct Buffer {
    state: Mutex<State>,
}

struct State {
    pending: Vec<u8>,
    sink: Sink,
}

impl Buffer {
    fn new(sink: Sink) -> Self {
        Self { state: Mutex::new(State { pending: Vec::with_capacity(CAPACITY), sink }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while a line was written leaves nothing half-done that matters: keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, line: &[u8], urgent: bool) -> io::Result<()> {
        let mut state = self.lock();
        if urgent {
            state.flush()?;
            state.sink.write_all(line)?;
            return state.sink.flush();
        }
        if state.pending.len() + line.len() > CAPACITY {
            state.flush()?;
        }
        state.pending.extend_from_slice(line);
        Ok(())
    }
}

impl State {
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Cleared even when the write fails: a log sink that refuses lines must not grow memory.
        let result = self.sink.write_all(&self.pending).and_then(|()| self.sink.flush());
        self.pending.clear();
        if self.pending.capacity() > CAPACITY {
            self.pending.shrink_to(CAPACITY);
        }
        result
    }
}

/// The `MakeWriter` for the subscriber: hands out a writer that knows the line's level.
#[derive(Clone, Copy)]
pub struct BufferedStdout(&'static Buffer);

impl BufferedStdout {
    /// The process's buffered standard output; starts the flusher thread on first use.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn get() -> Self {
        Self(BUFFER.get_or_init(|| {
            std::thread::Builder::new()
                .name("log-flusher".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(FLUSH_EVERY);
                        flush();
                    }
                })
                .expect("start the log flusher thread");
            Buffer::new(Box::new(io::stdout()))
        }))
    }
}

/// Writes out whatever is buffered (at exit, on panic, and every [`FLUSH_EVERY`]).
pub fn flush() {
    if let Some(buffer) = BUFFER.get() {
        // Nowhere to report a failing log sink.
        let _ = buffer.lock().flush();
    }
}

/// One event's writer: the fmt layer formats a whole line, then writes it with one `write_all`.
pub struct LineWriter {
    buffer: &'static Buffer,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.buffer.write(line, self.urgent)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { buffer: self.0, urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter { buffer: self.0, urgent: urgent(meta.target(), *meta.level()) }
    }
}

/// Everything but access lines below WARN (tracing orders the more verbose levels as greater).
fn urgent(target: &str, level: Level) -> bool {
    target != ACCESS_LOG || level <= Level::WARN
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A sink that records each `write` call separately.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn info_lines_are_batched_and_warnings_go_out_at_once_in_order() {
        let recorder = Recorder::default();
        let buffer = Buffer::new(Box::new(recorder.clone()));
        buffer.write(b"info 1\n", false).unwrap();
        buffer.write(b"info 2\n", false).unwrap();
        assert!(recorder.0.lock().unwrap().is_empty(), "info lines wait for the buffer");
        buffer.write(b"warn 3\n", true).unwrap();
        assert_eq!(*recorder.0.lock().unwrap(), vec![b"info 1\ninfo 2\n".to_vec(), b"warn 3\n".to_vec()]);
        buffer.write(b"info 4\n", false).unwrap();
        buffer.lock().flush().unwrap();
        assert_eq!(recorder.0.lock().unwrap().concat(), b"info 1\ninfo 2\nwarn 3\ninfo 4\n");
    }

    #[test]
    fn the_buffer_is_written_when_full_and_stays_bounded() {
        let recorder = Recorder::default();
        let buffer = Buffer::new(Box::new(recorder.clone()));
        let line = [b'x'; 1000];
        for _ in 0..200 {
            buffer.write(&line, false).unwrap();
            assert!(buffer.lock().pending.len() <= CAPACITY);
        }
        let writes = recorder.0.lock().unwrap();
        assert!(writes.len() >= 2 && writes.iter().all(|w| w.len() <= CAPACITY), "{}", writes.len());
    }

    #[test]
    fn a_failing_sink_does_not_grow_the_buffer() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("broken pipe"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::new(Box::new(Broken));
        for _ in 0..1000 {
            let _ = buffer.write(&[b'x'; 1000], false);
        }
        assert!(buffer.lock().pending.len() <= CAPACITY);
    }

    #[test]
    fn only_access_lines_below_warn_wait() {
        assert!(!urgent(ACCESS_LOG, Level::INFO) && !urgent(ACCESS_LOG, Level::DEBUG));
        assert!(urgent(ACCESS_LOG, Level::WARN) && urgent(ACCESS_LOG, Level::ERROR));
        for target in ["candidates_server::app", "candidates_gateway::routes", "h2"] {
            assert!(urgent(target, Level::INFO) && urgent(target, Level::DEBUG) && urgent(target, Level::WARN));
        }
    }
}
