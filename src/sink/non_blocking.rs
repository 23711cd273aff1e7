//! [`NonBlocking`]: puts any sink behind a bounded queue drained by a worker thread, so a slow or
//! stuck sink costs log lines (counted), never request time.
//!
//! ```
//! use std::time::Duration;
//! use tower_llm_log::{JsonLinesSink, LlmLogLayer, NonBlocking};
//!
//! let (sink, guard) = NonBlocking::new(JsonLinesSink::new(std::io::sink()));
//! let layer = LlmLogLayer::new(sink.clone());
//! // ... serve ...
//! # drop(layer);
//! let report = guard.shutdown(); // delivers what is queued, waiting at most 5 s
//! assert!(report.finished);
//! assert_eq!(sink.stats().dropped, 0);
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::{LlmLogRecord, LlmLogSink};

/// Counters of a [`NonBlocking`] sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Records handed to the inner sink.
    pub emitted: u64,
    /// Records lost because the queue was full (lossy mode) or the worker had stopped.
    pub dropped: u64,
    /// Records lost because the inner sink panicked on them.
    pub failed: u64,
    /// Records waiting in the queue now.
    pub queued: u64,
}

// Records travel unboxed: boxing made emit faster in a tight loop but a whole exchange slower
// (one more allocation freed on another thread per record); see benches/sinks.rs.
#[allow(clippy::large_enum_variant)]
enum Message {
    Record(LlmLogRecord),
    /// Acknowledged once everything sent before it has been handed to the inner sink.
    Flush(SyncSender<()>),
}

struct Shared {
    emitted: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    accepted: AtomicU64,
    closing: AtomicBool,
    /// Set at shutdown: the worker stops once the records accepted until then are delivered,
    /// even if more keep coming.
    stop_target: AtomicU64,
    /// The worker has stopped: whatever was accepted and not delivered is lost.
    stopped: AtomicBool,
    finished: Mutex<bool>,
    finished_signal: Condvar,
    /// The worker, to wake for a flush or shutdown. Records never wake it: it polls, so `emit`
    /// is a queue push and no system call.
    worker: OnceLock<Thread>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            emitted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            stop_target: AtomicU64::new(u64::MAX),
            stopped: AtomicBool::new(false),
            finished: Mutex::new(false),
            finished_signal: Condvar::new(),
            worker: OnceLock::new(),
        }
    }
}

impl Shared {
    fn wake_worker(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }
}

/// A sink that queues records for a background thread. Cloning it shares the queue.
///
/// In lossy mode (the default) [`emit`](LlmLogSink::emit) never blocks: when the queue is full
/// the record is dropped and counted. In blocking mode it waits for room instead, which slows
/// requests down to the inner sink's pace but loses nothing. The worker hands records to the
/// inner sink in batches through [`LlmLogSink::emit_batch`].
#[derive(Clone)]
pub struct NonBlocking {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
    blocking: bool,
}

/// Stops the worker of a [`NonBlocking`] sink when dropped, after delivering what is queued
/// (waiting at most the shutdown timeout). Keep it alive as long as the sink is used.
#[must_use = "dropping the guard stops the worker"]
pub struct NonBlockingGuard {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    timeout: Duration,
}

/// What [`NonBlockingGuard::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether everything queued was delivered within the timeout.
    pub finished: bool,
    /// The counters at the end.
    pub stats: SinkStats,
}

/// Configures a [`NonBlocking`] sink.
#[derive(Debug, Clone)]
pub struct NonBlockingBuilder {
    capacity: usize,
    batch: usize,
    blocking: bool,
    shutdown_timeout: Duration,
}

impl Default for NonBlockingBuilder {
    fn default() -> Self {
        NonBlockingBuilder {
            capacity: 8192,
            batch: 256,
            blocking: false,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl NonBlockingBuilder {
    /// How many records the queue holds (default 8192, at least 1).
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records.max(1);
        self
    }

    /// The most records handed to the inner sink at once (default 256, at least 1).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch = records.max(1);
        self
    }

    /// Wait for room in the queue instead of dropping (default: drop). Requests then wait for
    /// the inner sink; if it hangs (and after a shutdown that timed out on it), emitting hangs too.
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// The longest the guard waits for the queue to drain when dropped (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the worker thread and returns the sink and its guard.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn build(self, sink: impl LlmLogSink) -> (NonBlocking, NonBlockingGuard) {
        let (tx, rx) = mpsc::sync_channel(self.capacity);
        let shared = Arc::new(Shared::default());
        let worker_shared = shared.clone();
        let batch = self.batch;
        let worker = std::thread::Builder::new()
            .name("tower-llm-log-sink".into())
            .spawn(move || run(sink, rx, batch, worker_shared))
            .expect("failed to start the log sink thread");
        let _ = shared.worker.set(worker.thread().clone());
        let sink = NonBlocking {
            tx,
            shared: shared.clone(),
            blocking: self.blocking,
        };
        let guard = NonBlockingGuard {
            shared,
            worker: Some(worker),
            timeout: self.shutdown_timeout,
        };
        (sink, guard)
    }
}

impl NonBlocking {
    /// `sink` behind a queue of 8192 records, lossy, with a 5 s shutdown timeout.
    pub fn new(sink: impl LlmLogSink) -> (NonBlocking, NonBlockingGuard) {
        NonBlockingBuilder::default().build(sink)
    }

    /// A builder for other settings.
    pub fn builder() -> NonBlockingBuilder {
        NonBlockingBuilder::default()
    }

    /// The counters so far.
    pub fn stats(&self) -> SinkStats {
        stats(&self.shared)
    }

    /// Waits until every record emitted before this call has been handed to the inner sink, or
    /// `timeout` passes; returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        flush(&self.tx, Some(&self.shared), timeout)
    }
}

impl std::fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlocking")
            .field("blocking", &self.blocking)
            .field("stats", &self.stats())
            .finish()
    }
}

fn stats(shared: &Shared) -> SinkStats {
    let emitted = shared.emitted.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let accepted = shared.accepted.load(Ordering::Relaxed);
    let dropped = shared.dropped.load(Ordering::Relaxed);
    let undelivered = accepted.saturating_sub(emitted + failed);
    if shared.stopped.load(Ordering::Acquire) {
        // Nobody will deliver what is left: it is dropped.
        SinkStats {
            emitted,
            dropped: dropped + undelivered,
            failed,
            queued: 0,
        }
    } else {
        SinkStats {
            emitted,
            dropped,
            failed,
            queued: undelivered,
        }
    }
}

fn flush(tx: &SyncSender<Message>, shared: Option<&Shared>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
    let mut message = Message::Flush(ack_tx);
    loop {
        match tx.try_send(message) {
            Ok(()) => {
                if let Some(shared) = shared {
                    shared.wake_worker();
                }
                break;
            }
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                message = m;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
    ack_rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}

impl LlmLogSink for NonBlocking {
    fn emit(&self, record: LlmLogRecord) {
        // Counted before sending, so the worker never sees the queue as empty while a record is
        // on its way in (it would stop and leave it behind).
        self.shared.accepted.fetch_add(1, Ordering::AcqRel);
        let sent = match self.tx.try_send(Message::Record(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(message)) => {
                // The worker may be asleep after an idle spell: a full queue wakes it.
                self.shared.wake_worker();
                self.blocking && self.tx.send(message).is_ok()
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        if !sent {
            self.shared.accepted.fetch_sub(1, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The longest the worker sleeps between looks at an idle queue.
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(50);

/// The worker: takes what is queued in batches until the guard says stop and the queue is empty.
/// When it finds nothing it sleeps (1 ms, backing off to 50 ms while idle) instead of waiting on
/// the queue, so producers never pay for waking it (measured: about 20% of emit's cost).
fn run(sink: impl LlmLogSink, rx: Receiver<Message>, batch_size: usize, shared: Arc<Shared>) {
    let mut batch = Vec::with_capacity(batch_size);
    let mut acks = Vec::new();
    let mut idle_sleep = Duration::from_millis(1);
    loop {
        let mut disconnected = false;
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(Message::Record(r)) => batch.push(r),
                Ok(Message::Flush(ack)) => acks.push(ack),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        let worked = !batch.is_empty();
        if worked {
            // Handed over in a vector of its own size; the batch keeps its room for the next
            // sweep. (A fresh vector of `batch_size` cost 174 KB of new memory per batch at the
            // default 256, for batches that hold a few records under steady load: the kernel
            // zeroing pages showed in profiles of the gateway's writer thread.)
            let mut records = Vec::with_capacity(batch.len());
            records.append(&mut batch);
            let count = records.len() as u64;
            let result = catch_unwind(AssertUnwindSafe(|| sink.emit_batch(records)));
            if shared.stopped.load(Ordering::Acquire) {
                // A shutdown gave up on this worker while the sink was stuck, and reported
                // everything not delivered by then as dropped: the counters stay as reported,
                // and the worker stops here.
                break;
            }
            match result {
                Ok(()) => shared.emitted.fetch_add(count, Ordering::Relaxed),
                Err(_) => shared.failed.fetch_add(count, Ordering::Relaxed),
            };
        }
        for ack in acks.drain(..) {
            let _ = ack.try_send(());
        }
        if disconnected || (shared.closing.load(Ordering::Acquire) && delivered_enough(&shared)) {
            break;
        }
        // Sleeping between sweeps even after work (to take records in larger batches) measured
        // slower per exchange than draining as records come; so sleep only when there was none.
        // (Measured again in the gateway: its file writes come one per four requests already,
        // and a 1 ms wait after short batches changed neither writes nor context switches.)
        if worked {
            idle_sleep = Duration::from_millis(1);
        } else {
            std::thread::park_timeout(idle_sleep);
            idle_sleep = (idle_sleep * 2).min(MAX_IDLE_SLEEP);
        }
    }
    // Drop the inner sink (its own final flush, a file's or an exporter's) before saying the
    // worker is done, so the guard's bounded wait covers it.
    drop(sink);
    shared.stopped.store(true, Ordering::Release);
    drop(rx);
    let mut finished = shared.finished.lock().unwrap_or_else(|p| p.into_inner());
    *finished = true;
    shared.finished_signal.notify_all();
}

/// At shutdown: everything accepted before the guard asked to stop has been handled.
fn delivered_enough(shared: &Shared) -> bool {
    let handled = shared.emitted.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire);
    handled >= shared.stop_target.load(Ordering::Acquire) || stats(shared).queued == 0
}

impl NonBlockingGuard {
    /// The counters so far.
    pub fn stats(&self) -> SinkStats {
        stats(&self.shared)
    }

    /// Delivers what is queued and stops the worker, waiting at most the shutdown timeout.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(worker) = self.worker.take() else {
            return ShutdownReport {
                finished: true,
                stats: self.stats(),
            };
        };
        let target = self.shared.accepted.load(Ordering::Acquire);
        self.shared.stop_target.store(target, Ordering::Release);
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake_worker();
        let deadline = Instant::now() + self.timeout;
        let mut finished = self.shared.finished.lock().unwrap_or_else(|p| p.into_inner());
        while !*finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            finished = match self.shared.finished_signal.wait_timeout(finished, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        let done = *finished;
        drop(finished);
        if done {
            let _ = worker.join();
        } else {
            // The inner sink is stuck (a write that never returns): the thread is left to
            // finish on its own, and what it holds or has queued counts as dropped, since
            // nobody waits for it any more.
            self.shared.stopped.store(true, Ordering::Release);
        }
        ShutdownReport {
            finished: done,
            stats: self.stats(),
        }
    }
}

impl Drop for NonBlockingGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for NonBlockingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlockingGuard")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample;
    use crate::{MemorySink, RecordKind};

    #[test]
    fn records_arrive_in_order_in_batches() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        struct Batches(Arc<Mutex<Vec<usize>>>, MemorySink);
        impl LlmLogSink for Batches {
            fn emit(&self, r: LlmLogRecord) {
                self.1.emit(r)
            }
            fn emit_batch(&self, records: Vec<LlmLogRecord>) {
                self.0.lock().unwrap().push(records.len());
                for r in records {
                    self.1.emit(r)
                }
            }
        }
        let memory = MemorySink::new();
        let (sink, guard) = NonBlocking::builder()
            .batch_size(10)
            .build(Batches(batches.clone(), memory.clone()));
        for i in 0..100 {
            let mut r = sample(RecordKind::Request);
            r.sequence_number = i;
            sink.emit(r);
        }
        assert!(sink.flush(Duration::from_secs(5)));
        let got: Vec<u32> = memory.records().iter().map(|r| r.sequence_number).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(batches.lock().unwrap().iter().all(|&n| n <= 10));
        let report = guard.shutdown();
        assert!(report.finished);
        assert_eq!(
            report.stats,
            SinkStats {
                emitted: 100,
                dropped: 0,
                failed: 0,
                queued: 0
            }
        );
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_and_shutdown_is_bounded() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let stuck = move |_r: LlmLogRecord| {
            let (lock, cv) = &*g;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
        };
        let (sink, guard) = NonBlocking::builder()
            .capacity(4)
            .batch_size(1)
            .shutdown_timeout(Duration::from_millis(50))
            .build(stuck);
        // The sink is stuck until the end of the test: if emit waited for it, this would hang.
        for _ in 0..1000 {
            sink.emit(sample(RecordKind::Response));
        }
        let stats = sink.stats();
        // Kept: the queue's 4 and the one record the stuck worker holds.
        assert!(
            stats.dropped >= 1000 - 4 - 1 && stats.queued <= 4 + 1,
            "{stats:?}"
        );
        assert!(!sink.flush(Duration::from_millis(20)));
        let report = guard.shutdown();
        assert!(!report.finished, "the stuck sink cannot finish");
        assert_eq!(
            (report.stats.emitted, report.stats.queued, report.stats.dropped),
            (0, 0, 1000),
            "what was not delivered is reported as dropped"
        );
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    #[test]
    fn a_panicking_sink_is_counted_and_the_worker_goes_on() {
        let (sink, guard) = NonBlocking::builder().batch_size(1).build(|r: LlmLogRecord| {
            if r.sequence_number == 1 {
                panic!("bad record");
            }
        });
        for i in 0..3 {
            let mut r = sample(RecordKind::Request);
            r.sequence_number = i;
            sink.emit(r);
        }
        assert!(sink.flush(Duration::from_secs(5)));
        assert_eq!((sink.stats().emitted, sink.stats().failed), (2, 1));
        drop(guard);
        sink.emit(sample(RecordKind::Request));
        assert_eq!(
            sink.stats().dropped,
            1,
            "after shutdown, records are dropped and counted"
        );
    }

    #[test]
    fn shutdown_finishes_under_steady_traffic_and_accounts_for_every_record() {
        let (sink, guard) = NonBlocking::builder().capacity(64).build(|_r: LlmLogRecord| {
            std::thread::sleep(Duration::from_micros(20));
        });
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (sink, stop) = (sink.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sink.emit(sample(RecordKind::Request));
                    sent += 1;
                }
                sent
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        let report = guard.shutdown();
        assert!(
            report.finished,
            "traffic that never stops must not keep the worker alive"
        );
        std::thread::sleep(Duration::from_millis(10));
        stop.store(true, Ordering::Relaxed);
        let sent = producer.join().unwrap();
        let s = sink.stats();
        assert_eq!(s.queued, 0);
        assert_eq!(s.emitted + s.dropped + s.failed, sent, "{s:?}");
    }

    #[test]
    fn finished_means_the_inner_sink_was_dropped() {
        struct Flushes(Arc<AtomicBool>);
        impl LlmLogSink for Flushes {
            fn emit(&self, _r: LlmLogRecord) {}
        }
        impl Drop for Flushes {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(20));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let (sink, guard) = NonBlocking::new(Flushes(dropped.clone()));
        sink.emit(sample(RecordKind::Request));
        assert!(guard.shutdown().finished);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the sink's final flush ran before shutdown returned"
        );
    }

    #[test]
    fn blocking_mode_loses_nothing() {
        let memory = MemorySink::new();
        let slow = {
            let memory = memory.clone();
            move |r: LlmLogRecord| {
                std::thread::sleep(Duration::from_micros(50));
                memory.emit(r)
            }
        };
        let (sink, guard) = NonBlocking::builder().capacity(2).blocking(true).build(slow);
        for _ in 0..200 {
            sink.emit(sample(RecordKind::Request));
        }
        let report = guard.shutdown();
        assert!(report.finished);
        assert_eq!(memory.len(), 200);
        assert_eq!(report.stats.dropped, 0);
    }
}
