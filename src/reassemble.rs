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

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::{LlmLogRecord, RecordKind};

/// What an exchange lacks, or what in it does not fit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// No record of this side at all.
    Side(RecordKind),
    /// Chunks `from..=to` below the last (or the highest present) are absent.
    Chunks {
        /// Which side.
        kind: RecordKind,
        /// The first absent sequence number.
        from: u32,
        /// The last absent sequence number.
        to: u32,
    },
    /// No chunk of this side says it is the last, so more may have existed.
    LastChunk(RecordKind),
    /// A record that does not fit: a different record for a chunk already present (the first is
    /// kept), or a chunk past the one marked last (left out of the message).
    Conflict {
        /// Which side.
        kind: RecordKind,
        /// The chunk's sequence number.
        sequence_number: u32,
    },
}

/// One side (request or response) of an exchange, as logged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoggedSide {
    /// The chunks present up to the last, in sequence order, joined. Where a chunk is missing,
    /// the text has a gap (see [`LoggedExchange::missing`]).
    pub message: String,
    /// How many distinct chunks were present.
    pub chunks: u32,
    /// Whether every chunk from 0 to the last was present, and nothing else.
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
    /// What is missing or does not fit; empty when the exchange is complete.
    pub missing: Vec<Missing>,
    /// Records seen more than once, identical (same id, kind, sequence number and content), and
    /// ignored.
    pub duplicates: u32,
}

impl LoggedExchange {
    /// Whether both sides are present with all their chunks and nothing conflicting.
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

/// What tells identical records of a chunk apart from different ones.
fn fingerprint(r: &LlmLogRecord) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.messages.hash(&mut h);
    r.is_last.hash(&mut h);
    r.message_bytes.hash(&mut h);
    h.finish()
}

/// Chunks of one side, by sequence number.
#[derive(Debug, Default)]
struct OpenSide {
    chunks: BTreeMap<u32, (LlmLogRecord, u64)>,
    /// The lowest sequence number marked last (order-independent when several claim it).
    last: Option<u32>,
    conflicts: Vec<u32>,
}

impl OpenSide {
    /// Adds a chunk; returns whether it was an identical duplicate.
    fn add(&mut self, record: LlmLogRecord) -> bool {
        let print = fingerprint(&record);
        let n = record.sequence_number;
        if let Some((_, existing)) = self.chunks.get(&n) {
            if *existing != print {
                self.conflicts.push(n);
            }
            return *existing == print;
        }
        if record.is_last {
            self.last = Some(self.last.map_or(n, |l| l.min(n)));
        }
        self.chunks.insert(n, (record, print));
        false
    }

    fn complete(&self) -> bool {
        self.conflicts.is_empty()
            && self.last.is_some_and(|last| {
                self.chunks.keys().next_back() == Some(&last)
                    && self.chunks.len() as u64 == u64::from(last) + 1
            })
    }

    fn finish(self, kind: RecordKind, missing: &mut Vec<Missing>) -> Option<LoggedSide> {
        let highest = *self.chunks.keys().next_back()?;
        let upto = self.last.unwrap_or(highest);
        // Gaps as ranges, found from the chunks present: time and space follow what is there,
        // not the sequence numbers a record claims.
        // Counted in u64: the chunk after u32::MAX is past any sequence number, not u32::MAX again.
        let mut expected = 0u64;
        for &n in self.chunks.keys().take_while(|&&n| n <= upto) {
            if u64::from(n) > expected {
                missing.push(Missing::Chunks {
                    kind,
                    from: expected as u32,
                    to: n - 1,
                });
            }
            expected = u64::from(n) + 1;
        }
        if self.last.is_some() && expected <= u64::from(upto) {
            missing.push(Missing::Chunks {
                kind,
                from: expected as u32,
                to: upto,
            });
        }
        if self.last.is_none() {
            missing.push(Missing::LastChunk(kind));
        }
        let beyond: Vec<u32> = self.chunks.keys().copied().filter(|&n| n > upto).collect();
        let mut conflicts = self.conflicts;
        conflicts.extend(beyond);
        conflicts.sort_unstable();
        conflicts.dedup();
        missing.extend(conflicts.iter().map(|&sequence_number| Missing::Conflict {
            kind,
            sequence_number,
        }));
        let complete =
            self.last.is_some() && conflicts.is_empty() && self.chunks.len() as u64 == u64::from(upto) + 1;
        let chunks = self.chunks.len() as u32;
        let mut message = String::new();
        let mut record = None;
        for (n, (r, _)) in self.chunks {
            if n > upto {
                break;
            }
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

    /// What identifies the chunks present, to recognise their duplicates later.
    fn prints(&self) -> HashMap<u32, u64> {
        self.chunks.iter().map(|(&n, (_, p))| (n, *p)).collect()
    }
}

#[derive(Debug, Default)]
struct OpenExchange {
    request: OpenSide,
    response: OpenSide,
    duplicates: u32,
    generation: u64,
    /// What its records hold, as counted against the byte budget.
    bytes: usize,
}

impl OpenExchange {
    fn side(&mut self, kind: RecordKind) -> &mut OpenSide {
        match kind {
            RecordKind::Request => &mut self.request,
            RecordKind::Response => &mut self.response,
        }
    }

    fn add(&mut self, record: LlmLogRecord) {
        if self.side(record.kind).add(record) {
            self.duplicates += 1;
        }
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

/// The chunks of an exchange given out complete, to tell its late duplicates from new records.
#[derive(Debug)]
struct Done {
    request: HashMap<u32, u64>,
    response: HashMap<u32, u64>,
}

/// Rebuilds exchanges from records as they stream past, holding at most `window` open exchanges.
///
/// An exchange is given out as soon as both sides are complete; when more than `window` are open,
/// the one opened first is given out as it is (marked with what is missing). A record identical to
/// a chunk of one of the last `window` exchanges given out complete is a duplicate, and is dropped
/// (counted in [`late_duplicates`](Reassembler::late_duplicates)); any other late record starts a
/// new, incomplete exchange with its id, so no record is ever lost. Make the window larger than the
/// number of exchanges in flight at once in the log to get each exchange out whole.
#[derive(Debug)]
pub struct Reassembler {
    open: HashMap<String, OpenExchange>,
    /// Open exchanges in the order they opened, as (generation, id); entries whose exchange has
    /// since been given out are skipped when met, and the queue is compacted now and then.
    order: VecDeque<(u64, String)>,
    generation: u64,
    done: HashMap<String, Done>,
    done_order: VecDeque<String>,
    /// Chunks remembered in `done`, for its bound.
    done_chunks: usize,
    window: usize,
    /// The most bytes open exchanges may hold; past it, the oldest are given out incomplete.
    max_bytes: usize,
    /// Bytes open exchanges hold now.
    held_bytes: usize,
    late_duplicates: u64,
}

/// The default bound on what open exchanges hold: 64 MiB.
pub const DEFAULT_MAX_OPEN_BYTES: usize = 64 << 20;

/// The most chunk fingerprints kept to recognise late duplicates (about 40 bytes each).
const MAX_DONE_CHUNKS: usize = 1 << 20;

/// What a record is counted as against the byte budget: its text and the rest of it.
fn record_bytes(record: &LlmLogRecord) -> usize {
    const RECORD_OVERHEAD: usize = 512;
    record.messages.len() + record.correlation_id.len() + RECORD_OVERHEAD
}

impl Reassembler {
    /// A reassembler holding at most `window` open exchanges (at least 1).
    pub fn new(window: usize) -> Self {
        Reassembler {
            open: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
            done: HashMap::new(),
            done_order: VecDeque::new(),
            done_chunks: 0,
            window: window.max(1),
            max_bytes: DEFAULT_MAX_OPEN_BYTES,
            held_bytes: 0,
            late_duplicates: 0,
        }
    }

    /// Holds at most `bytes` in open exchanges (default [`DEFAULT_MAX_OPEN_BYTES`]): past it,
    /// the oldest open exchanges are given out as they are (incomplete), so one exchange whose
    /// chunks never end, or many that never finish, cost bounded memory.
    pub fn max_open_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Records that arrived identical to a chunk of an exchange already given out complete, and
    /// were ignored.
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
        let id = record.correlation_id.to_string();
        if !self.open.contains_key(&id) {
            if let Some(done) = self.done.get(&id) {
                let prints = match record.kind {
                    RecordKind::Request => &done.request,
                    RecordKind::Response => &done.response,
                };
                if prints.get(&record.sequence_number) == Some(&fingerprint(&record)) {
                    self.late_duplicates += 1;
                    return out;
                }
            }
            self.generation += 1;
            self.order.push_back((self.generation, id.clone()));
            self.open.insert(
                id.clone(),
                OpenExchange {
                    generation: self.generation,
                    ..OpenExchange::default()
                },
            );
        }
        let Some(exchange) = self.open.get_mut(&id) else {
            return out;
        };
        let bytes = record_bytes(&record);
        exchange.bytes += bytes;
        self.held_bytes += bytes;
        exchange.add(record);
        if exchange.complete() {
            if let Some(e) = self.open.remove(&id) {
                self.held_bytes -= e.bytes;
                self.remember(
                    id.clone(),
                    Done {
                        request: e.request.prints(),
                        response: e.response.prints(),
                    },
                );
                out.push(e.finish(id));
            }
        }
        while self.open.len() > self.window || (self.held_bytes > self.max_bytes && !self.open.is_empty()) {
            let Some((generation, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.open.get(&oldest).is_some_and(|e| e.generation == generation) {
                if let Some(e) = self.open.remove(&oldest) {
                    self.held_bytes -= e.bytes;
                    // Not remembered: a chunk of it arriving later is new, not a duplicate, and
                    // must come out (as another incomplete exchange with the same id).
                    out.push(e.finish(oldest));
                }
            }
        }
        if self.order.len() > 2 * self.open.len() + 64 {
            let open = &self.open;
            self.order
                .retain(|(g, id)| open.get(id).is_some_and(|e| e.generation == *g));
        }
        out
    }

    /// Gives out every exchange still open, oldest first.
    pub fn finish(&mut self) -> Vec<LoggedExchange> {
        let mut out = Vec::with_capacity(self.open.len());
        while let Some((generation, id)) = self.order.pop_front() {
            if self.open.get(&id).is_some_and(|e| e.generation == generation) {
                if let Some(e) = self.open.remove(&id) {
                    self.held_bytes -= e.bytes;
                    out.push(e.finish(id));
                }
            }
        }
        out
    }

    fn remember(&mut self, id: String, done: Done) {
        self.done_chunks += done.request.len() + done.response.len();
        if let Some(replaced) = self.done.insert(id.clone(), done) {
            self.done_chunks -= replaced.request.len() + replaced.response.len();
        }
        self.done_order.push_back(id);
        while self.done_order.len() > self.window || self.done_chunks > MAX_DONE_CHUNKS {
            let Some(old) = self.done_order.pop_front() else {
                break;
            };
            if let Some(gone) = self.done.remove(&old) {
                self.done_chunks -= gone.request.len() + gone.response.len();
            }
        }
    }
}

/// Rebuilds every exchange from `records` (any order, duplicates allowed), sorted by the time the
/// request started, then by correlation id.
pub fn reassemble(records: impl IntoIterator<Item = LlmLogRecord>) -> Vec<LoggedExchange> {
    let mut open: HashMap<String, OpenExchange> = HashMap::new();
    for record in records {
        open.entry(record.correlation_id.to_string())
            .or_default()
            .add(record);
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
    reassemble_with(records, Reassembler::new(window))
}

/// Rebuilds exchanges lazily with a reassembler of one's own (its window and byte budget).
pub fn reassemble_with<I>(records: I, mut reassembler: Reassembler) -> impl Iterator<Item = LoggedExchange>
where
    I: IntoIterator<Item = LlmLogRecord>,
{
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
            vec![Missing::Chunks {
                kind: RecordKind::Request,
                from: 1,
                to: 1
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
                Missing::Chunks {
                    kind: RecordKind::Request,
                    from: 1,
                    to: 1
                },
                Missing::LastChunk(RecordKind::Request)
            ]
        );
    }

    #[test]
    fn a_huge_sequence_number_costs_nothing() {
        let mut records = exchange("huge", "ab", "r", 1);
        let mut wild = records[0].clone();
        wild.sequence_number = u32::MAX;
        wild.is_last = true;
        records.push(wild);
        let e = &reassemble(records)[0];
        // The lowest chunk marked last wins (1, "b"); the wild one is past it, not a gap.
        assert_eq!(
            e.missing,
            vec![Missing::Conflict {
                kind: RecordKind::Request,
                sequence_number: u32::MAX
            }]
        );
        assert_eq!(e.request.as_ref().unwrap().message, "ab");
        // Alone, it is one range of absent chunks, not four billion entries.
        let mut only = exchange("huge2", "x", "r", 10);
        only[0].sequence_number = u32::MAX;
        let e = &reassemble(only)[0];
        assert_eq!(
            e.missing,
            vec![Missing::Chunks {
                kind: RecordKind::Request,
                from: 0,
                to: u32::MAX - 1
            }]
        );
    }

    #[test]
    fn a_different_record_for_the_same_chunk_is_a_conflict_not_a_duplicate() {
        // Two exchanges sharing a client-supplied id (a retry): never silently merged.
        let mut records = exchange("retry", "first", "one", 100);
        records.extend(exchange("retry", "second", "two", 100));
        let e = &reassemble(records.clone())[0];
        assert!(!e.is_complete());
        assert!(e.missing.contains(&Missing::Conflict {
            kind: RecordKind::Request,
            sequence_number: 0
        }));
        assert_eq!(e.duplicates, 0);
        // Streaming: the second comes out too, as its own (incomplete) exchange.
        let mut r = Reassembler::new(10);
        let mut out: Vec<LoggedExchange> = Vec::new();
        for rec in records {
            out.extend(r.push(rec));
        }
        out.extend(r.finish());
        let texts: Vec<String> = out
            .iter()
            .filter_map(|e| e.request.as_ref().map(|s| s.message.clone()))
            .collect();
        assert_eq!(texts, ["first", "second"]);
        assert_eq!(r.late_duplicates(), 0);
    }

    #[test]
    fn chunks_past_the_last_and_two_lasts_are_reported_in_any_order() {
        let mut records = exchange("odd", "0123456789", "r", 4); // chunks 0,1,2 (last)
        let mut extra = records[0].clone();
        extra.sequence_number = 5;
        extra.is_last = false;
        records.push(extra);
        let e = &reassemble(records.clone())[0];
        assert_eq!(
            e.missing,
            vec![Missing::Conflict {
                kind: RecordKind::Request,
                sequence_number: 5
            }]
        );
        assert_eq!(
            e.request.as_ref().unwrap().message,
            "0123456789",
            "the stray chunk is left out"
        );
        assert!(!e.request.as_ref().unwrap().complete);
        // Counting alone would call {0, 2 (last), 5} complete: it is not, chunk 1 is absent.
        records.retain(|r| !(r.kind == RecordKind::Request && r.sequence_number == 1));
        let mut s = Reassembler::new(10);
        let mut out = Vec::new();
        for rec in records.clone() {
            out.extend(s.push(rec));
        }
        assert!(out.is_empty(), "not given out as complete");
        let mut reversed = records;
        reversed.reverse();
        assert_eq!(
            reassemble(reversed.clone())[0].missing,
            reassemble(reversed.into_iter().rev())[0].missing
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
    fn an_exchange_whose_chunks_never_end_is_held_within_the_byte_budget() {
        // One request of 10,000 chunks of 1 KiB that never ends, with a budget of 256 KiB: it
        // comes out in pieces, each within the budget, and no chunk is lost.
        let mut r = Reassembler::new(1000).max_open_bytes(256 << 10);
        let mut out = Vec::new();
        let mut most = 0;
        for i in 0..10_000u32 {
            let mut rec = sample(RecordKind::Request);
            rec.correlation_id = "endless".into();
            rec.sequence_number = i;
            rec.is_last = false;
            rec.messages = bytes::Bytes::from(vec![b'x'; 1024]);
            out.extend(r.push(rec));
            most = most.max(r.held_bytes);
        }
        out.extend(r.finish());
        assert!(most <= (256 << 10) + 1024 + 512 + 64, "{most}");
        assert!(out.len() > 10 && out.iter().all(|e| !e.is_complete()));
        let chunks: usize = out
            .iter()
            .map(|e| e.request.as_ref().map_or(0, |s| s.message.len() / 1024))
            .sum();
        assert_eq!(chunks, 10_000);
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
