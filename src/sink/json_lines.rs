//! [`JsonLinesSink`]: one JSON object per line to any `std::io::Write`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::{LlmLogRecord, LlmLogSink};

/// Writes each record as one line of JSON (Azure column names, see [`LlmLogRecord`]) to a
/// writer, flushing after each record, or once per batch behind [`NonBlocking`](crate::NonBlocking),
/// so the output is always readable up to its last record. For files with rotation, see
/// [`JsonLinesFile`](crate::sink::JsonLinesFile).
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
    ///
    /// It waits at most [`FLUSH_WAIT`](super::FLUSH_WAIT) for a write in progress on another
    /// thread (a writer stuck on a full pipe would hold it forever): then it returns an error of
    /// kind [`WouldBlock`](std::io::ErrorKind::WouldBlock). Each write flushes when it ends.
    pub fn flush(&self) -> std::io::Result<()> {
        match super::lock_within(&self.writer, super::FLUSH_WAIT) {
            Some(mut w) => w.flush(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "a write has been in progress on another thread for too long",
            )),
        }
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

impl<W: Write + Send + 'static> JsonLinesSink<W> {
    fn write(&self, records: &[LlmLogRecord]) {
        // Serialize outside the writer's lock so concurrent emitters only queue on the write.
        let mut lines = std::mem::take(&mut *self.line.lock().unwrap_or_else(|p| p.into_inner()));
        lines.clear();
        let count = records.len() as u64;
        let mut serialized = 0;
        for record in records {
            if append_line(&mut lines, record) {
                serialized += 1;
            }
        }
        let written = {
            let mut w = self.writer();
            w.write_all(&lines).and_then(|()| w.flush()).is_ok()
        };
        let ok = if written { serialized } else { 0 };
        self.written.fetch_add(ok, Ordering::Relaxed);
        self.write_errors.fetch_add(count - ok, Ordering::Relaxed);
        if lines.capacity() <= 1 << 20 {
            *self.line.lock().unwrap_or_else(|p| p.into_inner()) = lines;
        }
    }
}

/// Appends `record` as one line of JSON; returns false (appending nothing) if it cannot be
/// serialized.
pub(crate) fn append_line(out: &mut Vec<u8>, record: &LlmLogRecord) -> bool {
    record.write_json_line(out)
}

impl<W: Write + Send + 'static> LlmLogSink for JsonLinesSink<W> {
    fn emit(&self, record: LlmLogRecord) {
        self.write(std::slice::from_ref(&record));
    }

    /// Writes the batch with one write and one flush.
    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        self.write(&records);
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        self.write(records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::RecordKind;
    use bytes::Bytes;

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

    #[test]
    fn whole_json_messages_are_written_as_json_and_read_back_the_same() {
        let message = r#"[{"role":"user","content":"Say \"hi\" \u00e9 \n"}]"#;
        let mut json = sample(RecordKind::Request);
        json.messages = Bytes::from_static(message.as_bytes());
        json.messages_are_json = true;
        let mut text = json.clone();
        text.messages_are_json = false;
        let sink = JsonLinesSink::new(Vec::new());
        sink.emit(json.clone());
        sink.emit(text.clone());
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].ends_with(&format!(r#","RequestMessages":{message}}}"#)),
            "the message as it is, not escaped: {}",
            lines[0]
        );
        assert!(
            lines[1].contains(r#""RequestMessages":"[{\"role\""#),
            "{}",
            lines[1]
        );
        // Both lines are JSON, and read back as the records they were.
        let back: Vec<LlmLogRecord> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, [json, text]);
        assert_eq!(back[0].messages_str(), message);
        // An empty message is written as a string whatever the flag.
        let mut empty = sample(RecordKind::Response);
        empty.messages = Bytes::new();
        empty.messages_are_json = true;
        let mut line = Vec::new();
        assert!(empty.write_json_line(&mut line));
        let back: LlmLogRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!((back.messages_str(), back.messages_are_json), ("", false));
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
