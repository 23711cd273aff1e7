//! An incremental JSON scanner: fed a body frame by frame, it finds the values at a few paths
//! without buffering the body.
//!
//! What to find is a static tree of [`Node`]s: at each path, a value is either captured whole
//! (its raw bytes retained up to a cap, as zero-copy slices of the frames), or recorded as a small
//! scalar (raw bytes, at most 4 KiB), or only walked through to reach its children.
//! Anything not in the tree is skipped quickly: inside strings the scanner jumps between quotes
//! and backslashes with `memchr`, and outside them it only counts brackets, with no memory per
//! nesting level. Structure is checked where the scanner walks (keys, colons, commas, matching
//! brackets); a skipped value is only delimited, not validated.
//!
//! Memory is bounded whatever the input: the capture's cap, one key buffer, the scalars, and a
//! stack as deep as the tree.
//!
//! The built-in API families use it, and so can readers of one's own
//! ([`LlmApi`](crate::api::LlmApi)):
//!
//! ```
//! use bytes::Bytes;
//! use tower_llm_log::scan::json::{Action, JsonScanner, Node};
//!
//! const MODEL: u8 = 0;
//! static PATHS: Node = Node::root(&[
//!     Node::key(b"model", Action::Scalar(MODEL), &[]),
//!     Node::key(b"contents", Action::Capture, &[]),
//! ]);
//! let mut scanner = JsonScanner::new(&PATHS, 1024);
//! scanner.feed(&Bytes::from_static(br#"{"contents":[{"parts":[{"te"#));
//! scanner.feed(&Bytes::from_static(br#"xt":"hi"}]}],"model":"gemini"}"#));
//! let scan = scanner.finish();
//! assert_eq!(scan.scalar(MODEL), Some(&br#""gemini""#[..]));
//! assert_eq!(&scan.capture().unwrap().to_bytes()[..], br#"[{"parts":[{"text":"hi"}]}]"#);
//! assert!(scan.problem().is_none());
//! ```
//!
//! With more than one [`Action::Capture`] in the tree, the captured values are logged together as
//! one JSON object keyed by their names (`{"system":...,"messages":...}`), sharing the cap.

use bytes::Bytes;
use memchr::memchr2;

use crate::capture::{LoggedMessage, MessageCapture};

mod paths;
mod result;
mod spare;

pub use paths::{Action, Node, Step};
pub use result::{scalar_bool, scalar_string, ScanResult};

/// The most bytes kept of one scalar value; a longer one is dropped.
pub(crate) const SCALAR_LIMIT: usize = 4096;
/// The most bytes kept of all scalar values of one body together.
const SCALAR_BUDGET: usize = 16 * 1024;
/// Keys of interest are short, even written with `\u` escapes; longer keys never match.
const KEY_LIMIT: usize = 192;
/// Enough of a literal to tell `true`, `false` and `null` apart from garbage.
const LITERAL_PREFIX: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value is expected next.
    Value,
    /// After `[`: a value or `]`.
    ArrayStart,
    /// After `{`: a key or `}`.
    ObjectStart,
    /// After `,` in an object: a key.
    NextKey,
    /// Inside a key string.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value: `,` or a closing bracket.
    AfterValue,
    /// Inside a string value.
    String,
    /// Inside a number, `true`, `false` or `null`.
    Literal,
    /// Inside a container nobody asked about.
    Skip,
    /// The top-level value is complete.
    Done,
    /// The input is not JSON; scanning stopped.
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    is_object: bool,
    node: &'static Node,
}

thread_local! {
    static STACKS: spare::Spares<Level> = const { spare::Spares::new() };
    static CAPTURES: spare::Spares<(&'static [u8], MessageCapture)> = const { spare::Spares::new() };
    static COUNTS: spare::Spares<(u8, u64, u64)> = const { spare::Spares::new() };
    static SCALARS: spare::Spares<(u8, u32, u32)> = const { spare::Spares::new() };
    static SCALAR_DATA: spare::Spares<u8> = const { spare::Spares::new() };
}

/// A value being recorded: where it started in the current frame, and at which level.
#[derive(Debug, Clone, Copy)]
struct Recording {
    start: usize,
    level: usize,
}

/// Scans one JSON body incrementally.
#[derive(Debug)]
pub struct JsonScanner {
    root: &'static Node,
    state: State,
    stack: Vec<Level>,
    pending: Option<&'static Node>,
    key: [u8; KEY_LIMIT],
    key_len: usize,
    key_overflow: bool,
    escape: bool,
    skip_depth: u64,
    skip_in_string: bool,
    captures: Vec<(&'static [u8], MessageCapture)>,
    duplicate_capture: bool,
    capture_rec: Option<Recording>,
    counts: Vec<(u8, u64, u64)>,
    measure_rec: Option<(u8, usize, u64)>,
    capture_limit: usize,
    scalar_rec: Option<(Action, Recording)>,
    /// Kept scalar values, one after another, then the one being recorded (from
    /// `scalar_start`); one buffer for all, so a scan allocates for scalars once.
    scalar_data: Vec<u8>,
    scalar_start: usize,
    scalar_overflow: bool,
    /// Slots (modulo 64) with a value dropped for its size.
    dropped_scalars: u64,
    scalars: Vec<(u8, u32, u32)>,
    literal: [u8; LITERAL_PREFIX],
    literal_len: usize,
    literal_numeric: bool,
    consumed: u64,
    error: Option<String>,
    fail_at: Option<usize>,
}

impl Drop for JsonScanner {
    fn drop(&mut self) {
        spare::give(&STACKS, std::mem::take(&mut self.stack));
        spare::give(&CAPTURES, std::mem::take(&mut self.captures));
        spare::give(&COUNTS, std::mem::take(&mut self.counts));
        spare::give(&SCALARS, std::mem::take(&mut self.scalars));
        spare::give(&SCALAR_DATA, std::mem::take(&mut self.scalar_data));
    }
}

impl Drop for ScanResult {
    fn drop(&mut self) {
        spare::give(&COUNTS, std::mem::take(&mut self.counts));
        spare::give(&SCALARS, std::mem::take(&mut self.scalars));
        spare::give(&SCALAR_DATA, std::mem::take(&mut self.scalar_data));
    }
}

/// What a byte is to JSON's structure outside strings: plain, a quote, an opening or a closing
/// bracket (the stream framers use it too).
pub(crate) const PLAIN: u8 = 0;
pub(crate) const QUOTE: u8 = 1;
pub(crate) const OPEN: u8 = 2;
pub(crate) const CLOSE: u8 = 3;

pub(crate) static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    t[b'"' as usize] = QUOTE;
    t[b'{' as usize] = OPEN;
    t[b'[' as usize] = OPEN;
    t[b'}' as usize] = CLOSE;
    t[b']' as usize] = CLOSE;
    t
};

/// The next `"` or `\\`. Escape-dense text (code, JSON in JSON) has them every few bytes, where
/// a plain loop beats `memchr2`'s setup; long plain runs go to `memchr2`.
#[inline]
fn find_quote_or_backslash(hay: &[u8]) -> Option<usize> {
    let quick = hay.len().min(16);
    if let Some(k) = hay[..quick].iter().position(|&b| b == b'"' || b == b'\\') {
        return Some(k);
    }
    memchr2(b'"', b'\\', &hay[quick..]).map(|k| k + quick)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

impl JsonScanner {
    /// A scanner looking for the paths under `root`, capturing at most `capture_limit` bytes.
    pub fn new(root: &'static Node, capture_limit: usize) -> Self {
        JsonScanner {
            root,
            state: State::Value,
            stack: spare::take(&STACKS),
            pending: Some(root),
            key: [0; KEY_LIMIT],
            key_len: 0,
            key_overflow: false,
            escape: false,
            skip_depth: 0,
            skip_in_string: false,
            captures: spare::take(&CAPTURES),
            duplicate_capture: false,
            capture_rec: None,
            counts: spare::take(&COUNTS),
            measure_rec: None,
            capture_limit,
            scalar_rec: None,
            scalar_data: spare::take(&SCALAR_DATA),
            scalar_start: 0,
            scalar_overflow: false,
            dropped_scalars: 0,
            scalars: spare::take(&SCALARS),
            literal: [0; LITERAL_PREFIX],
            literal_len: 0,
            literal_numeric: true,
            consumed: 0,
            error: None,
            fail_at: None,
        }
    }

    /// Scans the next frame of the body.
    pub fn feed(&mut self, frame: &Bytes) {
        if self.state != State::Failed {
            self.scan(frame);
            let end = self.fail_at.take().unwrap_or(frame.len());
            self.flush_recordings(frame, end);
        }
        self.consumed += frame.len() as u64;
    }

    /// Ends the scan at the end of the body.
    pub fn finish(mut self) -> ScanResult {
        if self.state == State::Literal && self.stack.is_empty() {
            if self.literal_is_valid() {
                self.state = State::Done;
            } else {
                self.error = Some(format!("invalid JSON at byte {}: invalid literal", self.consumed));
                self.state = State::Failed;
            }
        }
        let mut captures = std::mem::take(&mut self.captures);
        let capture = if self.root.capture_nodes() > 1 {
            let members: Vec<_> = captures
                .drain(..)
                .map(|(key, c)| (std::str::from_utf8(key).unwrap_or("?"), c.finish()))
                .collect();
            (!members.is_empty()).then(|| LoggedMessage::object(members, self.capture_limit))
        } else {
            captures.drain(..).next().map(|(_, c)| c.finish())
        };
        spare::give(&CAPTURES, captures);
        ScanResult {
            capture,
            counts: std::mem::take(&mut self.counts),
            scalars: std::mem::take(&mut self.scalars),
            scalar_data: std::mem::take(&mut self.scalar_data),
            error: self.error.take(),
            complete: self.state == State::Done,
            duplicate_capture: self.duplicate_capture,
            dropped_scalars: self.dropped_scalars,
            bytes: self.consumed,
        }
    }

    fn scan(&mut self, frame: &Bytes) {
        let buf = &frame[..];
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                State::Skip => i = self.skip(frame, i),
                State::String => {
                    if self.escape {
                        self.escape = false;
                        i += 1;
                        continue;
                    }
                    match find_quote_or_backslash(&buf[i..]) {
                        None => i = buf.len(),
                        Some(k) if buf[i + k] == b'\\' => i = self.past_escape(buf.len(), i + k),
                        Some(k) => {
                            i += k + 1;
                            self.value_ended(frame, i);
                        }
                    }
                }
                State::Key => {
                    if self.escape {
                        self.escape = false;
                        self.push_key(&buf[i..i + 1]);
                        i += 1;
                        continue;
                    }
                    match find_quote_or_backslash(&buf[i..]) {
                        None => {
                            self.push_key(&buf[i..]);
                            i = buf.len();
                        }
                        Some(k) if buf[i + k] == b'\\' => {
                            self.push_key(&buf[i..i + k + 1]);
                            self.escape = true;
                            i += k + 1;
                        }
                        Some(k) => {
                            self.push_key(&buf[i..i + k]);
                            i += k + 1;
                            self.key_ended();
                        }
                    }
                }
                State::Literal => {
                    let mut p = i;
                    while p < buf.len() && is_literal(buf[p]) {
                        p += 1;
                    }
                    self.note_literal(&buf[i..p]);
                    i = p;
                    if p < buf.len() {
                        if self.literal_is_valid() {
                            self.value_ended(frame, p);
                        } else {
                            i = self.fail(p, "invalid literal");
                        }
                    }
                }
                State::Failed => return,
                _ => {
                    let b = buf[i];
                    if is_ws(b) {
                        i += 1;
                        continue;
                    }
                    i = self.structural(frame, i, b);
                }
            }
        }
    }

    /// Handles one structural byte `b` at `i`; returns where to continue.
    fn structural(&mut self, frame: &Bytes, i: usize, b: u8) -> usize {
        match self.state {
            State::Value => self.begin_value(frame, i, b),
            State::ArrayStart if b == b']' => self.close(frame, i),
            State::ArrayStart => {
                self.pending = self.stack.last().and_then(|l| l.node.element_child());
                self.state = State::Value;
                i
            }
            State::ObjectStart if b == b'}' => self.close(frame, i),
            State::ObjectStart | State::NextKey if b == b'"' => {
                self.key_len = 0;
                self.key_overflow = false;
                self.state = State::Key;
                i + 1
            }
            State::ObjectStart | State::NextKey => self.fail(i, "expected a key"),
            State::Colon if b == b':' => {
                self.state = State::Value;
                i + 1
            }
            State::Colon => self.fail(i, "expected ':' after a key"),
            State::AfterValue => match (b, self.stack.last()) {
                (b',', Some(level)) if level.is_object => {
                    self.state = State::NextKey;
                    i + 1
                }
                (b',', Some(level)) => {
                    self.pending = level.node.element_child();
                    self.state = State::Value;
                    i + 1
                }
                (b'}', Some(level)) if level.is_object => self.close(frame, i),
                (b']', Some(level)) if !level.is_object => self.close(frame, i),
                _ => self.fail(i, "expected ',' or a closing bracket"),
            },
            State::Done => self.fail(i, "unexpected data after the JSON value"),
            _ => i,
        }
    }

    fn begin_value(&mut self, frame: &Bytes, i: usize, b: u8) -> usize {
        let node = self.pending.take();
        match b {
            b'{' | b'[' => {
                self.start_recordings(node, i);
                match node {
                    Some(n) if !n.children.is_empty() => {
                        let is_object = b == b'{';
                        self.stack.push(Level { is_object, node: n });
                        self.state = if is_object {
                            State::ObjectStart
                        } else {
                            State::ArrayStart
                        };
                        i + 1
                    }
                    _ => {
                        self.skip_depth = 1;
                        self.skip_in_string = false;
                        self.state = State::Skip;
                        self.skip(frame, i + 1)
                    }
                }
            }
            b'"' => {
                self.start_recordings(node, i);
                self.state = State::String;
                i + 1
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                self.start_recordings(node, i);
                self.state = State::Literal;
                self.literal_len = 0;
                self.literal_numeric = true;
                i
            }
            _ => self.fail(i, "expected a value"),
        }
    }

    fn close(&mut self, frame: &Bytes, i: usize) -> usize {
        self.stack.pop();
        self.value_ended(frame, i + 1);
        i + 1
    }

    /// Skips inside an uninteresting container; returns where to continue.
    fn skip(&mut self, frame: &Bytes, mut i: usize) -> usize {
        let buf = &frame[..];
        while i < buf.len() {
            if self.skip_in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match find_quote_or_backslash(&buf[i..]) {
                    None => return buf.len(),
                    Some(k) if buf[i + k] == b'\\' => i = self.past_escape(buf.len(), i + k),
                    Some(k) => {
                        self.skip_in_string = false;
                        i += k + 1;
                    }
                }
                continue;
            }
            while i < buf.len() {
                match CLASS[buf[i] as usize] {
                    PLAIN => i += 1,
                    QUOTE => {
                        self.skip_in_string = true;
                        i += 1;
                        break;
                    }
                    OPEN => {
                        self.skip_depth += 1;
                        i += 1;
                    }
                    _ => {
                        self.skip_depth -= 1;
                        i += 1;
                        if self.skip_depth == 0 {
                            self.value_ended(frame, i);
                            return i;
                        }
                    }
                }
            }
        }
        i
    }

    /// Steps over the backslash at `at` and the byte it escapes; when that byte is in the next
    /// frame, remembers to skip it there.
    fn past_escape(&mut self, len: usize, at: usize) -> usize {
        if at + 1 < len {
            at + 2
        } else {
            self.escape = true;
            len
        }
    }

    fn note_literal(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.literal_len < LITERAL_PREFIX {
                self.literal[self.literal_len] = b;
            }
            self.literal_len += 1;
            self.literal_numeric &= matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        }
    }

    fn literal_is_valid(&self) -> bool {
        let head = &self.literal[..self.literal_len.min(LITERAL_PREFIX)];
        match head.first() {
            Some(b't') => head == b"true",
            Some(b'f') => head == b"false",
            Some(b'n') => head == b"null",
            Some(_) => self.literal_numeric,
            None => false,
        }
    }

    fn push_key(&mut self, bytes: &[u8]) {
        let end = self.key_len + bytes.len();
        if end > KEY_LIMIT {
            self.key_overflow = true;
        } else if !self.key_overflow {
            self.key[self.key_len..end].copy_from_slice(bytes);
            self.key_len = end;
        }
    }

    fn key_ended(&mut self) {
        let raw = &self.key[..self.key_len];
        self.pending = match (self.key_overflow, self.stack.last()) {
            (false, Some(level)) if raw.contains(&b'\\') => {
                // A key written with escapes (`"m\u0065ssages"`) is the same key to the upstream.
                let mut quoted = Vec::with_capacity(raw.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(raw);
                quoted.push(b'"');
                serde_json::from_slice::<String>(&quoted)
                    .ok()
                    .and_then(|key| level.node.child_for_key(key.as_bytes()))
            }
            (false, Some(level)) => level.node.child_for_key(raw),
            _ => None,
        };
        self.state = State::Colon;
    }

    fn start_recordings(&mut self, node: Option<&'static Node>, at: usize) {
        let Some(node) = node else { return };
        let level = self.stack.len();
        match node.action {
            Action::Walk => {}
            Action::Capture => {
                let key = match node.step {
                    Step::Key(k) => k,
                    Step::Element => b"value",
                };
                // A duplicate key: the upstream's parser takes the last, so the log does too.
                if let Some(i) = self.captures.iter().position(|(k, _)| *k == key) {
                    self.duplicate_capture = true;
                    self.captures.remove(i);
                }
                let used: usize = self.captures.iter().map(|(_, c)| c.retained()).sum();
                self.captures
                    .push((key, MessageCapture::new(self.capture_limit.saturating_sub(used))));
                self.capture_rec = Some(Recording { start: at, level });
            }
            Action::Count(slot) => self.add_count(slot, 0),
            Action::Measure(slot) => {
                if self.measure_rec.is_none() {
                    self.measure_rec = Some((slot, level, self.consumed + at as u64));
                }
            }
            Action::Scalar(_) | Action::EachScalar(_) => {
                // Whatever a recording cut short left behind goes.
                self.scalar_data.truncate(self.kept_scalar_bytes());
                if self.scalar_data.capacity() == 0 {
                    // Most bodies' scalars (model, id, usage) fit here: one allocation for all.
                    self.scalar_data.reserve(512);
                }
                self.scalar_start = self.scalar_data.len();
                self.scalar_overflow = false;
                self.scalar_rec = Some((node.action, Recording { start: at, level }));
            }
        }
    }

    /// The value at the current level ended just before `end` in `frame`.
    fn value_ended(&mut self, frame: &Bytes, end: usize) {
        let level = self.stack.len();
        if let Some(rec) = self.capture_rec {
            if rec.level == level {
                if let Some((_, c)) = self.captures.last_mut() {
                    c.push(frame, rec.start, end);
                }
                self.capture_rec = None;
            }
        }
        if let Some((slot, at_level, start)) = self.measure_rec {
            if at_level == level {
                self.measure_rec = None;
                let bytes = (self.consumed + end as u64).saturating_sub(start);
                self.add_count(slot, bytes);
            }
        }
        if let Some((action, rec)) = self.scalar_rec {
            if rec.level == level {
                self.record_scalar_bytes(&frame[rec.start..end]);
                if !self.scalar_overflow {
                    self.keep_scalar(action);
                } else {
                    if let Action::Scalar(slot) | Action::EachScalar(slot) = action {
                        // Said, so a reader tells "there, too long to keep" from "absent".
                        self.dropped_scalars |= 1u64 << (slot % 64);
                    }
                    if let Action::Scalar(slot) = action {
                        // A repeated key whose last value is too long to keep: the upstream
                        // reads that value, so an earlier one must not stand in for it.
                        self.forget_scalar(slot);
                    }
                }
                self.scalar_rec = None;
            }
        }
        self.state = if level == 0 {
            State::Done
        } else {
            State::AfterValue
        };
    }

    fn add_count(&mut self, slot: u8, bytes: u64) {
        match self.counts.iter_mut().find(|(s, _, _)| *s == slot) {
            Some(c) => {
                c.1 += 1;
                c.2 += bytes;
            }
            None => self.counts.push((slot, 1, bytes)),
        }
    }

    /// Bytes of the scalars kept so far (the recording in progress follows them).
    fn kept_scalar_bytes(&self) -> usize {
        self.scalars.last().map_or(0, |&(_, _, end)| end as usize)
    }

    /// Drops the kept value in `slot`, closing the gap it leaves.
    fn forget_scalar(&mut self, slot: u8) {
        let Some(at) = self.scalars.iter().position(|(s, _, _)| *s == slot) else {
            return;
        };
        let (_, start, end) = self.scalars.remove(at);
        let len = end - start;
        self.scalar_data.drain(start as usize..end as usize);
        for entry in &mut self.scalars[at..] {
            entry.1 -= len;
            entry.2 -= len;
        }
        if self.scalar_start >= end as usize {
            self.scalar_start -= len as usize;
        }
    }

    /// Keeps the value just recorded, within the budget of all scalars.
    fn keep_scalar(&mut self, action: Action) {
        let slot = match action {
            Action::Scalar(slot) => {
                self.forget_scalar(slot);
                slot
            }
            Action::EachScalar(slot) => slot,
            _ => return,
        };
        let (start, end) = (self.scalar_start, self.scalar_data.len());
        if end <= SCALAR_BUDGET {
            self.scalars.push((slot, start as u32, end as u32));
        } else {
            self.scalar_data.truncate(start);
        }
        self.scalar_start = self.scalar_data.len();
    }

    fn record_scalar_bytes(&mut self, bytes: &[u8]) {
        let recorded = self.scalar_data.len() - self.scalar_start;
        if recorded + bytes.len() > SCALAR_LIMIT {
            self.scalar_overflow = true;
            self.scalar_data.truncate(self.scalar_start);
        } else if !self.scalar_overflow {
            self.scalar_data.extend_from_slice(bytes);
        }
    }

    /// Carries recordings in progress over the end of a frame (or up to a failure at `end`).
    fn flush_recordings(&mut self, frame: &Bytes, end: usize) {
        if let Some(rec) = self.capture_rec.as_mut() {
            if let Some((_, c)) = self.captures.last_mut() {
                c.push(frame, rec.start, end);
            }
            rec.start = 0;
        }
        if let Some((_, rec)) = self.scalar_rec {
            self.record_scalar_bytes(&frame[rec.start..end]);
            if let Some((_, rec)) = self.scalar_rec.as_mut() {
                rec.start = 0;
            }
        }
        if self.state == State::Failed {
            if self.capture_rec.take().is_some() {
                // The value was cut short by bad input: what is kept is not all of it.
                if let Some((_, c)) = self.captures.last_mut() {
                    c.mark_cut_short();
                }
            }
            self.measure_rec = None;
            if self.scalar_rec.take().is_some() {
                self.scalar_data.truncate(self.kept_scalar_bytes());
            }
        }
    }

    fn fail(&mut self, i: usize, what: &str) -> usize {
        self.error = Some(format!(
            "invalid JSON at byte {}: {what}",
            self.consumed + i as u64
        ));
        self.state = State::Failed;
        self.fail_at = Some(i);
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROOT: Node = Node {
        step: Step::Element,
        action: Action::Walk,
        children: &[
            Node {
                step: Step::Key(b"model"),
                action: Action::Scalar(0),
                children: &[],
            },
            Node {
                step: Step::Key(b"stream"),
                action: Action::Scalar(1),
                children: &[],
            },
            Node {
                step: Step::Key(b"opts"),
                action: Action::Scalar(2),
                children: &[],
            },
            Node {
                step: Step::Key(b"messages"),
                action: Action::Capture,
                children: &[Node {
                    step: Step::Element,
                    action: Action::Walk,
                    children: &[Node {
                        step: Step::Key(b"role"),
                        action: Action::EachScalar(3),
                        children: &[],
                    }],
                }],
            },
        ],
    };

    fn scan_split(input: &[u8], splits: &[usize], cap: usize) -> ScanResult {
        let mut s = JsonScanner::new(&ROOT, cap);
        let mut last = 0;
        for &p in splits.iter().chain(std::iter::once(&input.len())) {
            let p = p.clamp(last, input.len());
            s.feed(&Bytes::copy_from_slice(&input[last..p]));
            last = p;
        }
        s.finish()
    }

    fn text(r: &ScanResult) -> String {
        let c = r.capture.as_ref().unwrap();
        c.segments
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    const DOC: &str = r#" { "messages" : [ {"role":"user","content":"a \"quoted\" } ] { [ \\"}, {"role" : "system", "x": [1, {"y": null}]} ], "stream":true, "other": {"model": "nested"}, "model":"gpt-4o", "opts": {"include_usage": false} } "#;

    #[test]
    fn a_key_repeated_many_times_keeps_its_last_value_within_the_budget() {
        let mut body = String::from("{");
        for i in 0..5000 {
            body.push_str(&format!(r#""model":"decoy-{i}","stream":true,"#));
        }
        body.push_str(r#""model":"final","messages":[]}"#);
        for split in [1, 7, 4096] {
            let mut s = JsonScanner::new(&ROOT, 100);
            for piece in body.as_bytes().chunks(split) {
                s.feed(&Bytes::copy_from_slice(piece));
            }
            let r = s.finish();
            assert_eq!(r.scalar(0), Some(&br#""final""#[..]), "split {split}");
            assert_eq!(r.scalar(1), Some(&b"true"[..]));
            assert!(
                r.scalar_data.len() <= 64,
                "replaced values leave no garbage: {}",
                r.scalar_data.len()
            );
        }
    }

    #[test]
    fn a_too_long_repeated_scalar_does_not_leave_the_earlier_one() {
        let body = format!(
            r#"{{"model":"decoy","model":"{}","messages":[]}}"#,
            "m".repeat(SCALAR_LIMIT + 10)
        );
        let mut s = JsonScanner::new(&ROOT, 100);
        s.feed(&Bytes::from(body));
        assert_eq!(s.finish().scalar(0), None);
    }

    #[test]
    fn a_bad_literal_at_the_end_of_the_body_is_an_error() {
        for (body, ok) in [("tru", false), ("true", true), ("12", true), ("nul", false)] {
            let mut s = JsonScanner::new(&ROOT, 100);
            s.feed(&Bytes::from_static(body.as_bytes()));
            let r = s.finish();
            assert_eq!((r.is_complete(), r.error().is_none()), (ok, ok), "{body}");
        }
    }

    #[test]
    fn finds_values_at_every_split() {
        let whole = scan_split(DOC.as_bytes(), &[], 1 << 20);
        assert_eq!(whole.error, None);
        let messages = &DOC[DOC.find('[').unwrap()..DOC.find(" ], \"stream").unwrap() + 2];
        assert_eq!(text(&whole), messages);
        for split in 0..=DOC.len() {
            for second in [split, split + 1, split + 7] {
                let r = scan_split(DOC.as_bytes(), &[split, second], 1 << 20);
                assert_eq!(r.error, None, "split {split}");
                assert_eq!(text(&r), messages, "split {split}");
                assert_eq!(r.scalar(0), Some(&b"\"gpt-4o\""[..]));
                assert_eq!(r.scalar(1), Some(&b"true"[..]));
                assert_eq!(r.scalar(2), Some(&br#"{"include_usage": false}"#[..]));
                let roles: Vec<&[u8]> = r.scalars_in(3).collect();
                assert_eq!(roles, [&b"\"user\""[..], &b"\"system\""[..]]);
            }
        }
    }

    #[test]
    fn model_is_found_after_a_huge_messages_value_with_bounded_capture() {
        let mut body = String::from(r#"{"messages":[{"role":"user","content":""#);
        body.push_str(&"\u{e9}x\\\"".repeat(2 << 20)); // 10 MiB
        body.push_str(r#""}],"model":"m1"}"#);
        assert!(body.len() > 10 << 20);
        let r = scan_split(body.as_bytes(), &[100, 70_000, 3_000_000, 9_000_001], 1000);
        assert_eq!(r.error, None);
        assert_eq!(scalar_string(r.scalar(0).unwrap()).as_deref(), Some("m1"));
        let c = r.capture.clone().unwrap();
        assert!(c.truncated);
        assert_eq!(c.segments.iter().map(Bytes::len).sum::<usize>(), 1000);
        assert_eq!(
            c.total as usize,
            body.len() - r#"{"messages":"#.len() - r#","model":"m1"}"#.len()
        );
    }

    #[test]
    fn deep_nesting_costs_no_memory() {
        let depth = 100_000;
        let body = format!(
            r#"{{"x":{}{},"model":"deep"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let r = scan_split(body.as_bytes(), &[5000], 10);
        assert_eq!(r.error, None);
        assert_eq!(scalar_string(r.scalar(0).unwrap()).as_deref(), Some("deep"));
    }

    #[test]
    fn invalid_json_is_reported_with_its_offset() {
        let r = scan_split(br#"{"model":"a" "stream":true}"#, &[3], 10);
        assert_eq!(
            r.error.as_deref(),
            Some("invalid JSON at byte 13: expected ',' or a closing bracket")
        );
        assert_eq!(scalar_string(r.scalar(0).unwrap()).as_deref(), Some("a"));
        let r = scan_split(b"hello", &[], 10);
        assert!(r.error.clone().unwrap().contains("byte 0: expected a value"));
        let r = scan_split(br#"{"model":"a"} x"#, &[], 10);
        assert!(r.error.clone().unwrap().contains("after the JSON value"));
        let r = scan_split(b"{\"a\" 1}", &[], 10);
        assert!(r.error.clone().unwrap().contains("expected ':'"));
        let r = scan_split(b"[1,2}", &[], 10);
        assert!(r.error.clone().unwrap().contains("closing bracket"));
    }

    #[test]
    fn truncated_and_empty_bodies_are_reported() {
        let r = scan_split(br#"{"messages":[{"role":"us"#, &[4], 100);
        assert_eq!(r.error, None);
        assert!(!r.complete);
        assert!(r
            .problem()
            .unwrap()
            .contains("ended inside the JSON value after 24 bytes"));
        assert_eq!(text(&scan_split(br#"{"messages":[1,"#, &[], 100)), "[1,");
        let r = scan_split(b"", &[], 100);
        assert_eq!(r.problem().as_deref(), Some("the body is empty"));
        assert_eq!(scan_split(b"{}", &[], 1).problem(), None);
    }

    #[test]
    fn duplicate_keys_keep_the_last_as_upstream_parsers_do() {
        let body = r#"{"model":"decoy","messages":["decoy"],"model":"real","messages":["real"],"stream":false,"stream":true}"#;
        for split in 0..body.len() {
            let r = scan_split(body.as_bytes(), &[split], 100);
            assert_eq!(scalar_string(r.scalar(0).unwrap()).as_deref(), Some("real"));
            assert_eq!(r.scalar(1), Some(&b"true"[..]));
            assert_eq!(text(&r), r#"["real"]"#);
            assert!(r.duplicate_capture);
        }
        assert!(!scan_split(br#"{"messages":[]}"#, &[], 10).duplicate_capture);
    }

    #[test]
    fn keys_written_with_escapes_match() {
        let body = r#"{"m\u0065ssages":["x"],"mod\u0065l":"esc","\u0073tream":true}"#;
        let r = scan_split(body.as_bytes(), &[5, 18], 100);
        assert_eq!(r.error, None);
        assert_eq!(text(&r), r#"["x"]"#);
        assert_eq!(scalar_string(r.scalar(0).unwrap()).as_deref(), Some("esc"));
        assert_eq!(r.scalar(1), Some(&b"true"[..]));
    }

    #[test]
    fn literals_are_checked() {
        for bad in [
            r#"{"stream":tru}"#,
            r#"{"stream":trueX}"#,
            r#"{"stream":nul,"a":1}"#,
            r#"{"x":12a}"#,
        ] {
            let r = scan_split(bad.as_bytes(), &[9], 10);
            assert!(
                r.error.as_deref().unwrap_or("").contains("invalid literal"),
                "{bad}: {:?}",
                r.error
            );
        }
        for good in [r#"{"stream":true}"#, r#"{"a":false,"b":null,"c":-1.5e3}"#] {
            assert_eq!(scan_split(good.as_bytes(), &[10], 10).problem(), None, "{good}");
        }
    }

    #[test]
    fn a_capture_cut_by_bad_input_is_marked_truncated() {
        let r = scan_split(br#"{"messages":[1,2 3]}"#, &[], 100);
        assert!(r.error.is_some());
        let c = r.capture.clone().unwrap();
        assert!(c.truncated);
        assert_eq!(c.segments.concat(), b"[1,2 ");
    }

    #[test]
    fn scalar_memory_is_bounded_whatever_the_repeats() {
        let long = "m".repeat(SCALAR_LIMIT - 10);
        let mut body = String::from("{");
        for _ in 0..300 {
            body.push_str(&format!(r#""model":"{long}","#));
        }
        body.push_str(r#""messages":[{"role":"a"},{"role":"b"}]}"#);
        let r = scan_split(body.as_bytes(), &[], 10);
        assert_eq!(r.error, None);
        assert_eq!(r.scalars_in(0).count(), 1, "a single-valued path keeps one value");
        assert!(r.scalars.iter().map(|&(_, a, b)| (b - a) as usize).sum::<usize>() <= SCALAR_BUDGET);
        assert_eq!(r.scalars_in(3).count(), 2);
    }

    #[test]
    fn long_scalars_and_keys_are_dropped_not_kept() {
        let long = "m".repeat(SCALAR_LIMIT + 1);
        let body = format!(r#"{{"{}":1,"model":"{long}","stream":false}}"#, "k".repeat(100));
        let r = scan_split(body.as_bytes(), &[50, 2000], 10);
        assert_eq!(r.error, None);
        assert_eq!(r.scalar(0), None);
        assert_eq!(r.scalar(1), Some(&b"false"[..]));
    }
}
