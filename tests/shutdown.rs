//! Shutdown is bounded: a sink stuck in a write forever (a log file on a hung mount, a pipe
//! nobody reads) keeps neither `NonBlockingGuard::shutdown`, nor `flush`, nor the gateway from
//! returning. "Returning" is checked against a generous deadline only so that a regression
//! fails instead of hanging CI; nothing here measures how fast anything is.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{chat, spawn_gateway};
use tower_llm_log::sink::{JsonLinesFile, ShutdownReport};
use tower_llm_log::{LlmLogRecord, LlmLogSink, NonBlocking};

/// Long enough for any machine, however busy; a hang fails here instead of stalling CI.
const HANG: Duration = Duration::from_secs(120);

/// A record from the library's own doc example, with a message of `bytes` bytes.
fn record(bytes: usize) -> LlmLogRecord {
    let line = format!(
        r#"{{"TimeGenerated":"2026-01-02T03:04:05Z","CorrelationId":"c1","Kind":"Request","SequenceNumber":0,"IsLast":true,"Api":"chat_completions","OperationName":"chat","IsStreamCompletion":false,"RequestMessages":"{}","MessageBytes":{bytes},"Truncated":false,"DurationMs":1.5,"Outcome":"Completed"}}"#,
        "m".repeat(bytes)
    );
    serde_json::from_str(&line).expect("a record")
}

/// Runs `shutdown` on another thread and waits for its report, failing if it never comes.
fn shutdown_returns(guard: tower_llm_log::NonBlockingGuard) -> ShutdownReport {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(guard.shutdown());
    });
    rx.recv_timeout(HANG).expect("shutdown returned")
}

/// A sink that blocks until the test ends: its write never returns.
struct BlockedForever(Mutex<mpsc::Receiver<()>>);

impl LlmLogSink for BlockedForever {
    fn emit(&self, _: LlmLogRecord) {
        let _ = self.0.lock().map(|rx| rx.recv());
    }
}

#[test]
fn a_sink_blocked_forever_does_not_stop_shutdown_from_returning() {
    let (release, blocked) = mpsc::channel::<()>();
    let (sink, guard) = NonBlocking::builder()
        .capacity(16)
        .shutdown_timeout(Duration::from_millis(200))
        .build(BlockedForever(Mutex::new(blocked)));
    for _ in 0..100 {
        sink.emit(record(10));
    }
    let report = shutdown_returns(guard);
    assert!(!report.finished, "a sink that never returns cannot finish");
    assert_eq!(report.stats.emitted, 0);
    assert_eq!(
        report.stats.queued, 0,
        "nobody waits for what is left: it is dropped"
    );
    assert_eq!(report.stats.dropped, 100, "{:?}", report.stats);
    // After shutdown, records are dropped and counted, not queued for a worker that is gone.
    sink.emit(record(10));
    assert_eq!(sink.stats().dropped, 101);
    drop(release);
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tower-llm-log-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn a_log_file_on_a_pipe_nobody_reads_holds_up_neither_shutdown_nor_flush() {
    let dir = temp_dir("fifo");
    let path = dir.join("llm.jsonl");
    mkfifo(&path);
    // The file sink opens its file for reading and appending, which does not wait for a reader
    // on a FIFO; its writes block once the pipe's buffer (64 KiB on Linux) is full.
    let file = Arc::new(JsonLinesFile::builder(&path).build().expect("open the FIFO"));
    let (sink, guard) = NonBlocking::builder()
        .batch_size(8)
        .shutdown_timeout(Duration::from_millis(200))
        .build(file.clone());
    // 2 MB of records: far more than the pipe and the file's buffer hold.
    for _ in 0..1000 {
        sink.emit(record(2000));
    }
    let report = shutdown_returns(guard);
    assert!(!report.finished);
    assert_eq!(
        report.stats.emitted + report.stats.dropped + report.stats.failed,
        1000,
        "every record is accounted for: {:?}",
        report.stats
    );
    assert!(report.stats.dropped > 0);
    // The worker is stuck inside a write, holding the file: flush says so instead of waiting.
    let (tx, rx) = mpsc::channel();
    let f = file.clone();
    std::thread::spawn(move || {
        let _ = tx.send(f.flush());
    });
    let flushed = rx.recv_timeout(HANG).expect("flush returned");
    assert_eq!(
        flushed.expect_err("a write is stuck").kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[cfg(unix)]
#[test]
fn the_gateway_exits_on_ctrl_c_with_a_blocked_log_file() {
    let dir = temp_dir("gateway");
    let log = dir.join("llm.jsonl");
    mkfifo(&log);
    let args: [&std::ffi::OsStr; 4] = [
        "--shutdown-timeout".as_ref(),
        "1".as_ref(),
        "--log-file".as_ref(),
        log.as_os_str(),
    ];
    let (mut gateway, mut stderr, addr) = spawn_gateway(&args, &[]);
    // The rest of stderr is read on a thread, so the gateway never blocks writing to it.
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // 2 MB of records: the pipe fills and the writer blocks for good. Requests are unaffected.
    let prompt = "p".repeat(8000);
    for _ in 0..150 {
        assert_eq!(chat(&addr, &prompt), "HTTP/1.1 200 OK");
    }

    let interrupted = Command::new("kill")
        .args(["-INT", &gateway.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = gateway.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = gateway.kill();
            panic!("the gateway did not exit after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = rest.join().expect("stderr reader");
    assert!(status.success(), "{status:?}: {said}");
    assert!(said.contains("stopped: 150 exchanges"), "{said}");
    assert!(said.contains("the sinks did not finish in time"), "{said}");
    assert!(said.contains("is stuck; the records it holds are lost"), "{said}");
}
