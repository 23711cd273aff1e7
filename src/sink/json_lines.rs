//! [`JsonLinesSink`]: one JSON object per line to any `std::io::Write`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::{LlmLogRecord, LlmLogSink};

/// Writes each record as one line of JSON (Azure column names, see [`LlmLogRecord`]) to a
/// writer, flushing after each line so the file is always readable up to its last record.
///
/// Writing happens on the caller's task: wrap the writer in a `BufWriter` and keep it on a fast
/// device. A write error is counted ([`write_errors`](JsonLinesSink::write_errors)) and the
/// record is lost; the request is not affected.
///
/// ```
/// use tower_llm_log::{JsonLinesSink, LlmLogLayer};
///
/// let sink = JsonLinesSink::new(Vec::new());
/// let layer = LlmLogLayer::new(sink);
/// # let _ = layer;
/// ```
#[derive(Debug)]
pub struct JsonLinesSink<W> {
    writer: Mutex<W>,
    line: Mutex<Vec<u8>>,
    written: AtomicU64,
    write_errors: AtomicU64,
}

impl<W: Write + Send + 'static> JsonLinesSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> Self {
        JsonLinesSink {
            writer: Mutex::new(writer),
            line: Mutex::new(Vec::with_capacity(1024)),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    fn writer(&self) -> MutexGuard<'_, W> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flushes the writer.
    pub fn flush(&self) -> std::io::Result<()> {
        self.writer().flush()
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Records lost to write errors so far.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> W {
        let mut w = self.writer.into_inner().unwrap_or_else(|p| p.into_inner());
        // Flush errors surface on the next use of the writer; nothing to report them to here.
        let _ = w.flush();
        w
    }
}

impl<W: Write + Send + 'static> LlmLogSink for JsonLinesSink<W> {
    fn emit(&self, record: LlmLogRecord) {
        // Serialize outside the writer's lock so concurrent emitters only queue on the write.
        let mut line = std::mem::take(&mut *self.line.lock().unwrap_or_else(|p| p.into_inner()));
        line.clear();
        let ok = serde_json::to_writer(&mut line, &record).is_ok() && {
            line.push(b'\n');
            let mut w = self.writer();
            w.write_all(&line).and_then(|()| w.flush()).is_ok()
        };
        if ok {
            self.written.fetch_add(1, Ordering::Relaxed);
        } else {
            self.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        if line.capacity() <= 1 << 20 {
            *self.line.lock().unwrap_or_else(|p| p.into_inner()) = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::RecordKind;

    #[test]
    fn one_line_per_record_and_readable_back() {
        let sink = JsonLinesSink::new(Vec::new());
        sink.emit(sample(RecordKind::Request));
        sink.emit(sample(RecordKind::Response));
        assert_eq!(sink.written(), 2);
        let out = sink.into_inner();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: LlmLogRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back, sample(RecordKind::Response));
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_counted_not_raised() {
        let sink = JsonLinesSink::new(Broken);
        sink.emit(sample(RecordKind::Request));
        assert_eq!(sink.write_errors(), 1);
        assert_eq!(sink.written(), 0);
    }
}
