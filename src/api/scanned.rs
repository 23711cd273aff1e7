//! A body reader built on the JSON scanner: what every built-in family does with a JSON body,
//! the family supplying only its paths and how to read what was found.

use bytes::Bytes;

use super::{BodyFacts, BodyReader};
use crate::scan::json::{JsonScanner, Node, ScanResult};

/// Reads a JSON body with the scanner, then hands the scan to `read`.
pub(crate) struct ScannedBody {
    scanner: JsonScanner,
    /// What the captured value is called in errors (`"messages"`, `"output"`); `None` when the
    /// family does not capture (the reader builds the message itself).
    captured: Option<&'static str>,
    read: fn(&mut ScanResult, &mut BodyFacts),
}

impl ScannedBody {
    pub(crate) fn new(
        paths: &'static Node,
        cap: usize,
        captured: Option<&'static str>,
        read: fn(&mut ScanResult, &mut BodyFacts),
    ) -> Self {
        ScannedBody {
            scanner: JsonScanner::new(paths, cap),
            captured,
            read,
        }
    }
}

impl BodyReader for ScannedBody {
    fn feed(&mut self, frame: &Bytes) {
        self.scanner.feed(frame);
    }

    fn finish(self: Box<Self>, ended: bool) -> BodyFacts {
        let mut scan = self.scanner.finish();
        let mut facts = BodyFacts::default();
        report_problem(&scan, ended, &mut facts);
        if let Some(name) = self.captured {
            if scan.is_complete() && scan.capture().is_none() {
                facts.errors.push(format!("no \"{name}\" value").into());
            }
            if scan.has_duplicate_capture() {
                facts
                    .errors
                    .push(format!("\"{name}\" appears more than once; the last is logged").into());
            }
        }
        let clean = facts.errors.is_empty() && scan.is_complete() && !scan.has_duplicate_capture();
        (self.read)(&mut scan, &mut facts);
        if self.captured.is_some() {
            facts.message = scan.take_capture().unwrap_or_default();
            facts.whole_json = clean && facts.message.total > 0 && !facts.message.truncated;
        }
        facts
    }
}

/// What is wrong with a scanned body, if anything: a body cut short (the client gone) is not a
/// JSON problem; a malformed one always is.
pub(crate) fn report_problem(scan: &ScanResult, ended: bool, facts: &mut BodyFacts) {
    match scan.problem() {
        Some(p) if ended || scan.error().is_some() => facts.errors.push(p.into()),
        _ => {}
    }
}

/// Scalar slots the families share, so one reader serves the requests of several.
pub(crate) const MODEL: u8 = 0;
pub(crate) const STREAM: u8 = 1;
/// The end user a request names (OpenAI's `user` or `safety_identifier`, Anthropic's
/// `metadata.user_id`).
pub(crate) const END_USER: u8 = 2;

/// A request reader for families whose path says whether a stream was asked for (Gemini,
/// Bedrock): it captures `captured` by `paths`, and the request asked for a stream when its
/// route does.
pub(crate) fn request_by_route(
    paths: &'static Node,
    cap: usize,
    captured: &'static str,
    route: &super::Route,
) -> Box<dyn BodyReader> {
    fn streamed(_: &mut ScanResult, facts: &mut BodyFacts) {
        facts.stream = true;
    }
    fn not_streamed(_: &mut ScanResult, _: &mut BodyFacts) {}
    let read = if route.streaming { streamed } else { not_streamed };
    Box::new(ScannedBody::new(paths, cap, Some(captured), read))
}

/// Reads the model and the stream flag of a request (slots [`MODEL`] and [`STREAM`]).
pub(crate) fn read_model_and_stream(scan: &mut ScanResult, facts: &mut BodyFacts) {
    facts.model = string(scan, MODEL);
    facts.end_user = string(scan, END_USER);
    facts.stream = scan
        .scalar(STREAM)
        .and_then(crate::scan::json::scalar_bool)
        .unwrap_or(false);
}

/// A JSON string scalar, clipped like every short field.
pub(crate) fn string(scan: &ScanResult, slot: u8) -> Option<String> {
    scan.scalar(slot)
        .and_then(crate::scan::json::scalar_string)
        .filter(|s| !s.is_empty())
        .map(super::assemble::clip_owned)
}

/// A scalar read with serde; a value that does not read is reported.
pub(crate) fn parsed<T: serde::de::DeserializeOwned>(
    scan: &ScanResult,
    slot: u8,
    name: &str,
    facts: &mut BodyFacts,
) -> Option<T> {
    let raw = scan.scalar(slot)?;
    match super::assemble::from_json::<Option<T>>(raw) {
        Ok(v) => v,
        Err(e) => {
            facts.errors.push(format!("unreadable {name}: {e}").into());
            None
        }
    }
}
