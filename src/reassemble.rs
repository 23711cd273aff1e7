//! Records back into exchanges: chunks ordered by sequence number and joined, request and response
//! paired by correlation id, and whatever is missing said, never dropped or silently joined.
//!
//! Records may come in any order, from several files, with duplicates. [`reassemble`] does it in
//! one go; [`Reassembler`] does it as records stream past, holding at most a configured number of
//! open exchanges (the oldest is given out as incomplete when the window is full), so a log of any
//! size is read in bounded memory.
//!
//! ```
//! use tower_llm_log::reassemble::reassemble;
//! # use tower_llm_log::LlmLogRecord;
//! # let records: Vec<LlmLogRecord> = Vec::new();
//! for exchange in reassemble(records) {
//!     println!("{} complete={} missing={:?}", exchange.correlation_id, exchange.is_complete(), exchange.missing);
//!     if let Some(response) = &exchange.response {
//!         println!("{}", response.message);
//!     }
//! }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::{LlmLogRecord, RecordKind};

/// What an exchange lacks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// No record of this side at all.
    Side(RecordKind),
    /// A chunk below the last one is absent.
    Chunk {
        /// Which side.
        kind: RecordKind,
        /// The absent chunk's sequence number.
        sequence_number: u32,
    },
    /// No chunk of this side says it is the last, so more may have existed.
    LastChunk(RecordKind),
}

/// One side (request or response) of an exchange, as logged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoggedSide {
    /// The chunks present, in sequence order, joined. Where a chunk is missing, the text has a
    /// gap (see [`LoggedExchange::missing`]).
    pub message: String,
    /// How many distinct chunks were present.
    pub chunks: u32,
    /// Whether every chunk from 0 to the last was present.
    pub complete: bool,
    /// The side's metadata: its last chunk's record (which, for a response, carries the token
    /// counts), with `messages` emptied; or the highest chunk present when the last is missing.
    pub record: LlmLogRecord,
}

/// One exchange rebuilt from its records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoggedExchange {
    /// The exchange's correlation id.
    pub correlation_id: String,
    /// The request side, if any record of it was present.
    pub request: Option<LoggedSide>,
    /// The response side, if any record of it was present.
    pub response: Option<LoggedSide>,
    /// What is missing; empty when the exchange is complete.
    pub missing: Vec<Missing>,
    /// Records seen more than once (same id, kind and sequence number) and ignored.
    pub duplicates: u32,
}

impl LoggedExchange {
    /// Whether both sides are present with all their chunks.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The response's record (with the token counts), else the request's.
    pub fn record(&self) -> Option<&LlmLogRecord> {
        self.response
            .as_ref()
            .or(self.request.as_ref())
            .map(|s| &s.record)
    }
}

/// Chunks of one side, by sequence number.
#[derive(Debug, Default)]
struct OpenSide {
    chunks: BTreeMap<u32, LlmLogRecord>,
    last: Option<u32>,
}

impl OpenSide {
    fn complete(&self) -> bool {
        self.last
            .is_some_and(|last| self.chunks.len() as u64 == u64::from(last) + 1)
    }

    fn finish(self, kind: RecordKind, missing: &mut Vec<Missing>) -> Option<LoggedSide> {
        let highest = *self.chunks.keys().next_back()?;
        let last = self.last;
        let upto = last.unwrap_or(highest);
        for n in 0..=upto {
            if !self.chunks.contains_key(&n) {
                missing.push(Missing::Chunk {
                    kind,
                    sequence_number: n,
                });
            }
        }
        if last.is_none() {
            missing.push(Missing::LastChunk(kind));
        }
        let complete = last.is_some() && self.chunks.len() as u64 == u64::from(upto) + 1;
        let chunks = self.chunks.len() as u32;
        let mut message = String::new();
        let mut record = None;
        for (_, r) in self.chunks {
            message.push_str(r.messages_str());
            record = Some(r);
        }
        let mut record = record?;
        record.messages = bytes::Bytes::new();
        Some(LoggedSide {
            message,
            chunks,
            complete,
            record,
        })
    }
}

#[derive(Debug, Default)]
struct OpenExchange {
    request: OpenSide,
    response: OpenSide,
    duplicates: u32,
}

impl OpenExchange {
    fn add(&mut self, record: LlmLogRecord) {
        let side = match record.kind {
            RecordKind::Request => &mut self.request,
            RecordKind::Response => &mut self.response,
        };
        if side.chunks.contains_key(&record.sequence_number) {
            self.duplicates += 1;
            return;
        }
        if record.is_last {
            side.last = Some(record.sequence_number);
        }
        side.chunks.insert(record.sequence_number, record);
    }

    fn complete(&self) -> bool {
        self.request.complete() && self.response.complete()
    }

    fn finish(self, correlation_id: String) -> LoggedExchange {
        let mut missing = Vec::new();
        let request = self.request.finish(RecordKind::Request, &mut missing);
        let response = self.response.finish(RecordKind::Response, &mut missing);
        if request.is_none() {
            missing.insert(0, Missing::Side(RecordKind::Request));
        }
        if response.is_none() {
            missing.push(Missing::Side(RecordKind::Response));
        }
        LoggedExchange {
            correlation_id,
            request,
            response,
            missing,
            duplicates: self.duplicates,
        }
    }
}

/// Rebuilds exchanges from records as they stream past, holding at most `window` open exchanges.
///
/// An exchange is given out as soon as both sides are complete; when more than `window` are open,
/// the one opened first is given out as it is (marked with what is missing). A record arriving for
/// one of the last `window` exchanges given out complete can only be a duplicate, and is dropped
/// (counted in [`late_duplicates`](Reassembler::late_duplicates)); any other late record starts a
/// new, incomplete exchange with its id, so no record is ever lost. Make the window larger than the
/// number of exchanges in flight at once in the log to get each exchange out whole.
#[derive(Debug)]
pub struct Reassembler {
    open: HashMap<String, OpenExchange>,
    order: VecDeque<String>,
    done: HashSet<String>,
    done_order: VecDeque<String>,
    window: usize,
    late_duplicates: u64,
}

impl Reassembler {
    /// A reassembler holding at most `window` open exchanges (at least 1).
    pub fn new(window: usize) -> Self {
        Reassembler {
            open: HashMap::new(),
            order: VecDeque::new(),
            done: HashSet::new(),
            done_order: VecDeque::new(),
            window: window.max(1),
            late_duplicates: 0,
        }
    }

    /// Records that arrived after their exchange was given out complete, and were ignored.
    pub fn late_duplicates(&self) -> u64 {
        self.late_duplicates
    }

    /// Open exchanges now.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// Takes a record; returns the exchanges it completed or pushed out of the window.
    pub fn push(&mut self, record: LlmLogRecord) -> Vec<LoggedExchange> {
        let mut out = Vec::new();
        let id = record.correlation_id.clone();
        if self.done.contains(&id) {
            self.late_duplicates += 1;
            return out;
        }
        let exchange = match self.open.get_mut(&id) {
            Some(e) => e,
            None => {
                self.order.push_back(id.clone());
                self.open.entry(id.clone()).or_default()
            }
        };
        exchange.add(record);
        if exchange.complete() {
            if let Some(e) = self.open.remove(&id) {
                self.order.retain(|o| o != &id);
                self.remember(id.clone());
                out.push(e.finish(id));
            }
        }
        while self.open.len() > self.window {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.open.remove(&oldest) {
                // Not remembered: a chunk of it arriving later is new, not a duplicate, and must
                // come out (as another incomplete exchange with the same id), never be dropped.
                out.push(e.finish(oldest));
            }
        }
        out
    }

    /// Gives out every exchange still open, oldest first.
    pub fn finish(&mut self) -> Vec<LoggedExchange> {
        let mut out = Vec::with_capacity(self.open.len());
        while let Some(id) = self.order.pop_front() {
            if let Some(e) = self.open.remove(&id) {
                out.push(e.finish(id));
            }
        }
        out
    }

    fn remember(&mut self, id: String) {
        self.done.insert(id.clone());
        self.done_order.push_back(id);
        while self.done_order.len() > self.window {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
    }
}

/// Rebuilds every exchange from `records` (any order, duplicates allowed), sorted by the time the
/// request started, then by correlation id.
pub fn reassemble(records: impl IntoIterator<Item = LlmLogRecord>) -> Vec<LoggedExchange> {
    let mut open: HashMap<String, OpenExchange> = HashMap::new();
    for record in records {
        open.entry(record.correlation_id.clone()).or_default().add(record);
    }
    let mut out: Vec<LoggedExchange> = open.into_iter().map(|(id, e)| e.finish(id)).collect();
    out.sort_by(|a, b| {
        let ta = a.record().map(|r| r.time_generated);
        let tb = b.record().map(|r| r.time_generated);
        ta.cmp(&tb).then_with(|| a.correlation_id.cmp(&b.correlation_id))
    });
    out
}

/// Rebuilds exchanges lazily from an iterator of records, with at most `window` open at once.
pub fn reassemble_streaming<I>(records: I, window: usize) -> impl Iterator<Item = LoggedExchange>
where
    I: IntoIterator<Item = LlmLogRecord>,
{
    let mut reassembler = Reassembler::new(window);
    let mut records = records.into_iter();
    let mut ready: VecDeque<LoggedExchange> = VecDeque::new();
    let mut finished = false;
    std::iter::from_fn(move || loop {
        if let Some(e) = ready.pop_front() {
            return Some(e);
        }
        if finished {
            return None;
        }
        match records.next() {
            Some(r) => ready.extend(reassembler.push(r)),
            None => {
                finished = true;
                ready.extend(reassembler.finish());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use bytes::Bytes;

    /// The records of one exchange: `req` and `res` cut into chunks of `n` bytes.
    fn exchange(id: &str, req: &str, res: &str, n: usize) -> Vec<LlmLogRecord> {
        let mut out = Vec::new();
        for (kind, text) in [(RecordKind::Request, req), (RecordKind::Response, res)] {
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(n).collect();
            for (i, c) in chunks.iter().enumerate() {
                let mut r = sample(kind);
                r.correlation_id = id.into();
                r.sequence_number = i as u32;
                r.is_last = i + 1 == chunks.len();
                r.messages = Bytes::copy_from_slice(c);
                out.push(r);
            }
        }
        out
    }

    /// A deterministic shuffle (no dependency on a random source).
    fn shuffle<T>(v: &mut [T], seed: u64) {
        let mut x = seed | 1;
        for i in (1..v.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }

    #[test]
    fn shuffled_and_duplicated_records_give_the_exchanges_back() {
        let mut records = Vec::new();
        for i in 0..20 {
            records.extend(exchange(
                &format!("c{i:02}"),
                &format!("prompt {i} {}", "p".repeat(i * 7)),
                &format!("answer {i}"),
                5,
            ));
        }
        let dupes: Vec<LlmLogRecord> = records.iter().step_by(3).cloned().collect();
        records.extend(dupes);
        shuffle(&mut records, 42);
        let out = reassemble(records.clone());
        assert_eq!(out.len(), 20);
        for e in &out {
            let i: usize = e.correlation_id[1..].parse().unwrap();
            assert!(e.is_complete(), "{e:?}");
            assert_eq!(
                e.request.as_ref().unwrap().message,
                format!("prompt {i} {}", "p".repeat(i * 7))
            );
            assert_eq!(e.response.as_ref().unwrap().message, format!("answer {i}"));
            assert!(e.record().unwrap().is_last);
        }
        assert!(out.iter().map(|e| e.duplicates).sum::<u32>() > 0);
        // The streaming form gives the same exchanges with a window wide enough.
        let mut streamed: Vec<LoggedExchange> = reassemble_streaming(records, 25).collect();
        streamed.sort_by(|a, b| a.correlation_id.cmp(&b.correlation_id));
        let mut ids: Vec<&str> = out.iter().map(|e| e.correlation_id.as_str()).collect();
        ids.sort();
        assert_eq!(
            streamed
                .iter()
                .map(|e| e.correlation_id.as_str())
                .collect::<Vec<_>>(),
            ids
        );
        assert!(streamed.iter().all(LoggedExchange::is_complete));
    }

    #[test]
    fn gaps_are_reported_not_joined() {
        let mut records = exchange("gap", "0123456789abcdef", "xyz", 4);
        // Drop request chunk 1 and the response's only (last) chunk's partner: remove request seq 1.
        records.retain(|r| !(r.kind == RecordKind::Request && r.sequence_number == 1));
        let e = &reassemble(records.clone())[0];
        assert_eq!(
            e.missing,
            vec![Missing::Chunk {
                kind: RecordKind::Request,
                sequence_number: 1
            }]
        );
        assert_eq!(e.request.as_ref().unwrap().message, "012389abcdef");
        assert!(!e.request.as_ref().unwrap().complete);
        // No last chunk: said so, with the gaps below the highest present.
        records.retain(|r| !(r.kind == RecordKind::Request && r.is_last));
        let e = &reassemble(records)[0];
        assert_eq!(
            e.missing,
            vec![
                Missing::Chunk {
                    kind: RecordKind::Request,
                    sequence_number: 1
                },
                Missing::LastChunk(RecordKind::Request)
            ]
        );
    }

    #[test]
    fn one_sided_exchanges_are_kept_and_marked() {
        let records: Vec<LlmLogRecord> = exchange("only-req", "p", "r", 10)
            .into_iter()
            .filter(|r| r.kind == RecordKind::Request)
            .collect();
        let e = &reassemble(records)[0];
        assert_eq!(e.missing, vec![Missing::Side(RecordKind::Response)]);
        assert!(e.response.is_none());
        assert_eq!(e.record().unwrap().kind, RecordKind::Request);
    }

    #[test]
    fn the_window_bounds_memory_and_evicts_oldest_as_incomplete() {
        let mut r = Reassembler::new(3);
        let mut out = Vec::new();
        // Ten exchanges whose responses never come: at most 3 stay open.
        for i in 0..10 {
            for rec in exchange(&format!("w{i}"), "p", "r", 10)
                .into_iter()
                .filter(|r| r.kind == RecordKind::Request)
            {
                out.extend(r.push(rec));
                assert!(r.open() <= 3);
            }
        }
        assert_eq!(out.len(), 7);
        assert_eq!(out[0].correlation_id, "w0", "the oldest goes first");
        assert!(out
            .iter()
            .all(|e| e.missing == vec![Missing::Side(RecordKind::Response)]));
        out.extend(r.finish());
        assert_eq!(out.len(), 10);
        // A late duplicate of an exchange already given out is ignored, not a new exchange.
        let mut r = Reassembler::new(3);
        let recs = exchange("late", "p", "r", 10);
        let mut given = Vec::new();
        for rec in recs.iter().cloned() {
            given.extend(r.push(rec));
        }
        assert_eq!(given.len(), 1);
        assert!(r.push(recs[0].clone()).is_empty());
        assert_eq!((r.late_duplicates(), r.open()), (1, 0));
    }
}
