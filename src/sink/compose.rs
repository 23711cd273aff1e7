//! Composition: send records to several sinks ([`FanOut`]) and choose which records go where
//! ([`Filtered`]).
//!
//! ```
//! use tower_llm_log::sink::{FanOut, Filtered};
//! use tower_llm_log::{LlmLogLayer, LlmLogRecord, MemorySink, Outcome};
//!
//! let everything = MemorySink::new();
//! let problems = MemorySink::new();
//! let sink = FanOut::new()
//!     .with(everything.clone())
//!     .with(Filtered::new(problems.clone(), |r: &LlmLogRecord| {
//!         !r.outcome.is_success() || r.error.is_some()
//!     }));
//! let layer = LlmLogLayer::new(sink);
//! # let _ = layer;
//! ```

use crate::{LlmLogRecord, LlmLogSink};

/// Sends every record to each of its sinks, in order. A panic in one sink does not keep the
/// record from the others.
#[derive(Default)]
pub struct FanOut {
    sinks: Vec<Box<dyn LlmLogSink>>,
}

impl FanOut {
    /// No sinks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink.
    pub fn with(mut self, sink: impl LlmLogSink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// How many sinks records go to.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there are no sinks.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

fn guarded(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok()
}

impl LlmLogSink for FanOut {
    fn emit(&self, record: LlmLogRecord) {
        self.emit_batch(vec![record]);
    }

    fn emit_batch(&self, records: Vec<LlmLogRecord>) {
        let mut panicked = false;
        if let Some((last, rest)) = self.sinks.split_last() {
            for sink in rest {
                panicked |= !guarded(|| sink.emit_borrowed(&records));
            }
            panicked |= !guarded(|| last.emit_batch(records));
        }
        if panicked {
            // Surface it to whoever counts panics (the layer or NonBlocking), after every sink
            // has had the records.
            panic!("a sink in a FanOut panicked");
        }
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        let mut panicked = false;
        for sink in &self.sinks {
            panicked |= !guarded(|| sink.emit_borrowed(records));
        }
        if panicked {
            panic!("a sink in a FanOut panicked");
        }
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

/// Passes on only the records a predicate accepts.
pub struct Filtered<S, F> {
    sink: S,
    accept: F,
}

impl<S, F> Filtered<S, F>
where
    S: LlmLogSink,
    F: Fn(&LlmLogRecord) -> bool + Send + Sync + 'static,
{
    /// `sink`, receiving the records for which `accept` returns true.
    pub fn new(sink: S, accept: F) -> Self {
        Filtered { sink, accept }
    }
}

impl<S, F> LlmLogSink for Filtered<S, F>
where
    S: LlmLogSink,
    F: Fn(&LlmLogRecord) -> bool + Send + Sync + 'static,
{
    fn emit(&self, record: LlmLogRecord) {
        if (self.accept)(&record) {
            self.sink.emit(record);
        }
    }

    fn emit_batch(&self, mut records: Vec<LlmLogRecord>) {
        records.retain(|r| (self.accept)(r));
        if !records.is_empty() {
            self.sink.emit_batch(records);
        }
    }

    fn emit_borrowed(&self, records: &[LlmLogRecord]) {
        // Passed on as it is when every record is accepted; else the accepted ones are copied.
        let accepted = records.iter().filter(|r| (self.accept)(r)).count();
        if accepted == records.len() {
            if accepted > 0 {
                self.sink.emit_borrowed(records);
            }
        } else if accepted > 0 {
            let kept = records.iter().filter(|r| (self.accept)(r)).cloned().collect();
            self.sink.emit_batch(kept);
        }
    }
}

impl<S, F> std::fmt::Debug for Filtered<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filtered").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::{MemorySink, Outcome, RecordKind};
    use std::sync::Arc;

    #[test]
    fn errors_to_one_place_everything_to_another() {
        let all = MemorySink::new();
        let errors = MemorySink::new();
        let sink = FanOut::new()
            .with(all.clone())
            .with(Filtered::new(errors.clone(), |r: &LlmLogRecord| {
                !r.outcome.is_success()
            }));
        let mut bad = sample(RecordKind::Response);
        bad.outcome = Outcome::UpstreamError;
        sink.emit_batch(vec![sample(RecordKind::Request), bad.clone()]);
        sink.emit(sample(RecordKind::Response));
        assert_eq!(all.len(), 3);
        assert_eq!(errors.records(), vec![bad]);
    }

    #[test]
    fn a_panicking_member_does_not_starve_the_others() {
        let after = MemorySink::new();
        let sink = FanOut::new()
            .with(|_r: LlmLogRecord| panic!("broken"))
            .with(after.clone());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink.emit(sample(RecordKind::Request))
        }));
        assert!(result.is_err(), "the panic is reported to the caller");
        assert_eq!(after.len(), 1, "the next sink still got the record");
    }

    /// A sink that only reads: it sees the batch where it lies, and counts what it saw.
    #[derive(Clone, Default)]
    struct Reader(Arc<std::sync::Mutex<Vec<(usize, usize)>>>);

    impl LlmLogSink for Reader {
        fn emit(&self, record: LlmLogRecord) {
            self.emit_borrowed(std::slice::from_ref(&record));
        }
        fn emit_borrowed(&self, records: &[LlmLogRecord]) {
            self.0
                .lock()
                .unwrap()
                .push((records.as_ptr() as usize, records.len()));
        }
    }

    #[test]
    fn sinks_before_the_last_read_the_batch_without_a_copy() {
        let (first, second) = (Reader::default(), Reader::default());
        let last = MemorySink::new();
        let sink = FanOut::new()
            .with(first.clone())
            .with(second.clone())
            .with(last.clone());
        let batch = vec![sample(RecordKind::Request), sample(RecordKind::Response)];
        let at = batch.as_ptr() as usize;
        sink.emit_batch(batch.clone());
        // A fresh vector: its address is not the clone's. Compare with what the sinks saw.
        let seen = first.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(second.0.lock().unwrap().clone(), seen, "both read the same batch");
        assert_eq!(seen[0].1, 2);
        assert_ne!(
            seen[0].0, at,
            "the caller's copy is not the batch the fan-out got"
        );
        assert_eq!(last.records(), batch, "the last sink keeps the records");
        // A sink that keeps records (memory) gets its own copies when not last.
        let kept = MemorySink::new();
        let reader = Reader::default();
        FanOut::new()
            .with(kept.clone())
            .with(reader.clone())
            .emit_borrowed(&batch);
        assert_eq!(kept.records(), batch);
        assert_eq!(
            reader.0.lock().unwrap().clone(),
            vec![(at, 2)],
            "read where it lies"
        );
    }

    #[test]
    fn a_filter_passes_a_borrowed_batch_on_whole_or_copies_what_it_keeps() {
        let reader = Reader::default();
        let only_requests = Filtered::new(reader.clone(), |r: &LlmLogRecord| r.kind == RecordKind::Request);
        let requests = vec![sample(RecordKind::Request), sample(RecordKind::Request)];
        only_requests.emit_borrowed(&requests);
        assert_eq!(
            reader.0.lock().unwrap().clone(),
            vec![(requests.as_ptr() as usize, 2)],
            "all accepted: passed on as it is"
        );
        let memory = MemorySink::new();
        let only_responses = Filtered::new(memory.clone(), |r: &LlmLogRecord| r.kind == RecordKind::Response);
        only_responses.emit_borrowed(&requests);
        assert!(memory.is_empty(), "none accepted: nothing emitted");
        let mixed = vec![sample(RecordKind::Request), sample(RecordKind::Response)];
        only_responses.emit_borrowed(&mixed);
        assert_eq!(memory.records(), vec![mixed[1].clone()]);
    }
}
