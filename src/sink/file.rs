//! [`JsonLinesFile`]: JSON Lines to a file, buffered, with rotation by size and by age.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_llm_log::sink::JsonLinesFile;
//! use tower_llm_log::{LlmLogLayer, NonBlocking};
//!
//! let file = JsonLinesFile::builder("logs/llm-log.jsonl")
//!     .max_bytes(64 << 20)                     // rotate at 64 MiB
//!     .rotate_every(Duration::from_secs(3600)) // and at least hourly
//!     .max_files(24)                           // keep 24 rotated files
//!     .build()?;
//! let (sink, _guard) = NonBlocking::new(file); // file I/O off the request path
//! let layer = LlmLogLayer::new(sink);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::json_lines::append_line;
use crate::{LlmLogRecord, LlmLogSink};

/// Writes records as JSON Lines to a file, rotating it by size and/or age.
///
/// The active file is always at the configured path. Rotation renames it to
/// `{stem}.{unix milliseconds}-{counter}.{extension}` beside it (names sort in time order) and
/// deletes the oldest rotated files beyond [`max_files`](JsonLinesFileBuilder::max_files). A record
/// is never split across files; one larger than `max_bytes` gets a file of its own.
///
/// Writes are buffered and flushed once per batch (or per record when not behind
/// [`NonBlocking`](crate::NonBlocking), which is where this sink belongs). An I/O error (disk full,
/// directory removed) is counted in [`write_errors`](JsonLinesFile::write_errors) and reported once
/// through `tracing`; the sink reopens the file on the next write and goes on when it can.
pub struct JsonLinesFile {
    state: Mutex<State>,
    written: AtomicU64,
    write_errors: AtomicU64,
    rotations: AtomicU64,
    error_reported: AtomicBool,
}

struct State {
    path: PathBuf,
    max_bytes: Option<u64>,
    rotate_every: Option<Duration>,
    max_files: usize,
    file: Option<BufWriter<File>>,
    size: u64,
    opened_at: Instant,
    counter: u64,
    last_rotation_ms: u128,
    lines: Vec<u8>,
}

/// Configures a [`JsonLinesFile`].
#[derive(Debug, Clone)]
pub struct JsonLinesFileBuilder {
    path: PathBuf,
    max_bytes: Option<u64>,
    rotate_every: Option<Duration>,
    max_files: usize,
}

impl JsonLinesFileBuilder {
    /// Rotate when the file would grow past this many bytes (default: never by size).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }

    /// Rotate when the file is older than this (default: never by age).
    pub fn rotate_every(mut self, age: Duration) -> Self {
        self.rotate_every = Some(age);
        self
    }

    /// How many rotated files to keep besides the active one (default 10).
    pub fn max_files(mut self, files: usize) -> Self {
        self.max_files = files;
        self
    }

    /// Opens (or creates, with its directory) the file for appending.
    pub fn build(self) -> std::io::Result<JsonLinesFile> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let (file, size) = open(&self.path)?;
        Ok(JsonLinesFile {
            state: Mutex::new(State {
                path: self.path,
                max_bytes: self.max_bytes,
                rotate_every: self.rotate_every,
                max_files: self.max_files,
                file: Some(file),
                size,
                opened_at: Instant::now(),
                counter: 0,
                last_rotation_ms: 0,
                lines: Vec::new(),
            }),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            error_reported: AtomicBool::new(false),
        })
    }
}

/// Opens `path` for appending. A file whose last line was cut short (a write that failed part
/// way, on a full disk) gets a line end first, so the next record starts a line of its own.
fn open(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let mut size = file.metadata()?.len();
    if size > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
            size += 1;
        }
    }
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

impl JsonLinesFile {
    /// A builder for a file at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> JsonLinesFileBuilder {
        JsonLinesFileBuilder {
            path: path.into(),
            max_bytes: None,
            rotate_every: None,
            max_files: 10,
        }
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Records lost to I/O errors so far.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Rotations so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// Flushes buffered lines to the file.
    ///
    /// It waits at most [`FLUSH_WAIT`](super::FLUSH_WAIT) for a write in progress on another
    /// thread (a writer stuck on a hung mount or a full pipe would hold the file forever): then
    /// it returns an error of kind [`WouldBlock`](std::io::ErrorKind::WouldBlock). A write
    /// flushes its own batch when it ends, so nothing is left unflushed once it returns.
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(mut state) = super::lock_within(&self.state, super::FLUSH_WAIT) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "a write to the log file has been in progress on another thread for too long",
            ));
        };
        match state.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, records: &[LlmLogRecord]) {
        let mut state = self.state();
        let mut lines = std::mem::take(&mut state.lines);
        let mut lost = 0u64;
        let mut buffered = 0u64;
        let mut first_error = None;
        // The file may have been removed (or moved away) under us: writes would go nowhere
        // visible. One stat per batch notices it, and the next write creates the file again.
        if state.file.is_some() && !state.path.exists() {
            state.file = None;
        }
        for record in records {
            lines.clear();
            if !append_line(&mut lines, record) {
                lost += 1;
                continue;
            }
            match state.write_line(&lines, &self.rotations) {
                Ok(()) => buffered += 1,
                Err(e) => {
                    lost += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        // Lines count as written once flushed. A failed flush loses what the buffer held (at most
        // this batch's lines that were not yet written out): count them all as lost.
        match state.file.as_mut().map(|f| f.flush()) {
            Some(Err(e)) => {
                state.file = None;
                lost += buffered;
                first_error.get_or_insert(e);
            }
            _ => {
                self.written.fetch_add(buffered, Ordering::Relaxed);
            }
        }
        if lines.capacity() <= 1 << 20 {
            state.lines = lines;
        }
        let path = state.path.clone();
        drop(state);
        self.write_errors.fetch_add(lost, Ordering::Relaxed);
        if let Some(e) = first_error {
            if !self.error_reported.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    target: "tower_llm_log",
                    path = %path.display(),
                    error = %e,
                    "cannot write the LLM log file; records are being lost (counted in write_errors), retrying on each write"
                );
            }
        } else if lost == 0 && self.error_reported.swap(false, Ordering::Relaxed) {
            tracing::info!(target: "tower_llm_log", path = %path.display(), "writing the LLM log file again");
        }
    }
}

impl State {
    fn write_line(&mut self, line: &[u8], rotations: &AtomicU64) -> std::io::Result<()> {
        let len = line.len() as u64;
        let too_big = self
            .max_bytes
            .is_some_and(|max| self.size > 0 && self.size + len > max);
        let too_old = self
            .rotate_every
            .is_some_and(|age| self.size > 0 && self.opened_at.elapsed() >= age);
        if too_big || too_old {
            self.rotate()?;
            rotations.fetch_add(1, Ordering::Relaxed);
        }
        if self.file.is_none() {
            let (file, size) = open(&self.path)?;
            self.file = Some(file);
            self.size = size;
            self.opened_at = Instant::now();
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file not open"))?;
        match file.write_all(line) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }

    /// Moves the active file aside. Whatever happens, the next write starts a fresh file at the
    /// path, so a failure here cannot make every later write try (and fail) to rotate again.
    fn rotate(&mut self) -> std::io::Result<()> {
        let flushed = self.file.take().map(|mut f| f.flush()).transpose();
        self.size = 0;
        self.opened_at = Instant::now();
        flushed?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        // The counter only tells apart rotations within the same millisecond.
        self.counter = if millis == self.last_rotation_ms {
            self.counter + 1
        } else {
            0
        };
        self.last_rotation_ms = millis;
        let (stem, ext) = self.stem_and_ext();
        let rotated = self
            .path
            .with_file_name(format!("{stem}.{millis:013}-{:06}{ext}", self.counter));
        match std::fs::rename(&self.path, &rotated) {
            Ok(()) => self.prune(&stem, &ext),
            // Removed meanwhile: there is nothing to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn stem_and_ext(&self) -> (String, String) {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = self
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        (stem, ext)
    }

    /// Deletes the oldest rotated files beyond `max_files`.
    fn prune(&self, stem: &str, ext: &str) {
        let dir = match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let prefix = format!("{stem}.");
        let mut rotated: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let middle = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(ext));
                // `{digits}-{digits}`, the shape `rotate` writes; nothing else is ever deleted.
                middle.and_then(|m| m.split_once('-')).is_some_and(|(ms, n)| {
                    !ms.is_empty()
                        && !n.is_empty()
                        && ms.bytes().all(|b| b.is_ascii_digit())
                        && n.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .collect();
        rotated.sort();
        let excess = rotated.len().saturating_sub(self.max_files);
        for old in &rotated[..excess] {
            // A file that cannot be removed now is tried again at the next rotation.
            let _ = std::fs::remove_file(old);
        }
    }
}

impl LlmLogSink for JsonLinesFile {
    fn emit(&self, record: LlmLogRecord) {
        self.write(std::slice::from_ref(&record));
    }

    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        self.write(&records);
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        self.write(records);
    }
}

impl std::fmt::Debug for JsonLinesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesFile")
            .field("path", &self.state().path)
            .field("written", &self.written())
            .field("write_errors", &self.write_errors())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::RecordKind;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tower-llm-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(i: u32) -> LlmLogRecord {
        let mut r = sample(RecordKind::Request);
        r.sequence_number = i;
        r
    }

    /// Every file in `dir`, oldest first, with its lines parsed.
    fn files(dir: &Path) -> Vec<(PathBuf, u64, Vec<LlmLogRecord>)> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().contains("notes"))
            .collect();
        paths.sort_by_key(|p| (p.file_name().unwrap() == "log.jsonl", p.clone()));
        paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let records = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
                (p.clone(), text.len() as u64, records)
            })
            .collect()
    }

    #[test]
    fn rotation_by_size_keeps_records_whole_and_in_order() {
        let dir = temp_dir("size");
        let line_len = {
            let mut v = Vec::new();
            append_line(&mut v, &record(0));
            v.len() as u64
        };
        let sink = JsonLinesFile::builder(dir.join("log.jsonl"))
            .max_bytes(line_len * 3 + 10)
            .max_files(100)
            .build()
            .unwrap();
        for batch in 0..5 {
            sink.emit_batch((0..4).map(|i| record(batch * 4 + i)).collect());
        }
        assert_eq!((sink.written(), sink.write_errors()), (20, 0));
        let all = files(&dir);
        assert_eq!(
            all.len(),
            7,
            "3 records per file: 6 full files and the active one"
        );
        let mut seq = Vec::new();
        for (path, size, records) in &all {
            assert!(*size <= line_len * 3 + 10, "{path:?} is {size} bytes");
            seq.extend(records.iter().map(|r| r.sequence_number));
        }
        assert_eq!(seq, (0..20).collect::<Vec<_>>());
        assert_eq!(sink.rotations(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn old_files_beyond_the_cap_are_deleted() {
        let dir = temp_dir("prune");
        let sink = JsonLinesFile::builder(dir.join("log.jsonl"))
            .max_bytes(1)
            .max_files(2)
            .build()
            .unwrap();
        std::fs::write(dir.join("log.notes.jsonl"), "kept: not a rotated file\n").unwrap();
        for i in 0..10 {
            sink.emit(record(i));
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            4,
            "{names:?}: active + 2 rotated + the unrelated file"
        );
        assert!(names.contains(&"log.notes.jsonl".to_string()));
        let kept: Vec<u32> = files(&dir)
            .iter()
            .flat_map(|(_, _, r)| r.iter().map(|r| r.sequence_number).collect::<Vec<_>>())
            .collect();
        assert_eq!(kept, [7, 8, 9], "the newest records survive, one per file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_by_age() {
        let dir = temp_dir("age");
        let sink = JsonLinesFile::builder(dir.join("log.jsonl"))
            .rotate_every(Duration::from_millis(30))
            .build()
            .unwrap();
        sink.emit(record(0));
        sink.emit(record(1));
        std::thread::sleep(Duration::from_millis(40));
        sink.emit(record(2));
        let all = files(&dir);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].2.len(), 2);
        assert_eq!(all[1].2.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_removed_file_is_created_again_with_or_without_rotation() {
        for rotating in [false, true] {
            let dir = temp_dir(if rotating { "removed-rot" } else { "removed" });
            let path = dir.join("log.jsonl");
            let mut builder = JsonLinesFile::builder(&path);
            if rotating {
                builder = builder.max_bytes(100_000);
            }
            let sink = builder.build().unwrap();
            sink.emit(record(0));
            std::fs::remove_file(&path).unwrap();
            for i in 1..4 {
                sink.emit(record(i));
            }
            assert_eq!((sink.written(), sink.write_errors()), (4, 0));
            let text = std::fs::read_to_string(&path).unwrap();
            let seq: Vec<u32> = text
                .lines()
                .map(|l| serde_json::from_str::<LlmLogRecord>(l).unwrap().sequence_number)
                .collect();
            assert_eq!(seq, [1, 2, 3], "rotating = {rotating}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_rotation_due_on_a_removed_file_does_not_fail_every_write() {
        let dir = temp_dir("removed-due");
        let path = dir.join("log.jsonl");
        let sink = JsonLinesFile::builder(&path).max_bytes(1).build().unwrap();
        sink.emit(record(0));
        std::fs::remove_file(&path).unwrap();
        // Removed between batches and a rotation due: the rename finds nothing, writing goes on.
        sink.emit_batch(vec![record(1), record(2)]);
        sink.emit(record(3));
        assert_eq!(sink.write_errors(), 0);
        assert_eq!(sink.written(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_record() {
        let dir = temp_dir("torn");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        std::fs::write(&path, "{\"TimeGenerated\":\"2026-").unwrap();
        let sink = JsonLinesFile::builder(&path).build().unwrap();
        sink.emit(record(7));
        let text = std::fs::read_to_string(&path).unwrap();
        let last: LlmLogRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last.sequence_number, 7);
        assert_eq!(text.lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn io_errors_are_counted_and_writing_resumes() {
        let dir = temp_dir("errors");
        let path = dir.join("log.jsonl");
        let sink = JsonLinesFile::builder(&path).build().unwrap();
        sink.emit(record(0));
        std::fs::remove_dir_all(&dir).unwrap();
        // The next open (after the handle is lost) fails: the directory is gone.
        sink.state().file = None;
        sink.emit(record(1));
        sink.emit_batch(vec![record(2), record(3)]);
        assert_eq!(sink.write_errors(), 3);
        std::fs::create_dir_all(&dir).unwrap();
        sink.emit(record(4));
        assert_eq!(sink.written(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        let back: LlmLogRecord = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(back.sequence_number, 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
