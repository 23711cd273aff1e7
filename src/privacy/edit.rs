//! Edits to a logged message: where its JSON string values are, and replacing ranges inside
//! them so that the message stays valid JSON with the same structure.
//!
//! The [`Redactor`] trait is how users add redaction of their own; its edits are checked here
//! before they are applied.

use std::borrow::Cow;
use std::ops::Range;

/// An edit a [`Redactor`] asks for: replace `range` of the message's text (byte offsets, on
/// character boundaries, inside one JSON string value) by `[REDACTED:<kind>]`, or by a
/// replacement of one's own (written as JSON string content: quotes and control characters
/// are escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    range: Range<usize>,
    kind: Cow<'static, str>,
    replacement: Option<String>,
}

impl Edit {
    /// Replace `range` by `[REDACTED:<kind>]`; `kind` is what the record's `Redactions` counts.
    pub fn new(range: Range<usize>, kind: impl Into<Cow<'static, str>>) -> Self {
        Edit {
            range,
            kind: kind.into(),
            replacement: None,
        }
    }

    /// Replace by `text` instead of the tag.
    pub fn with_replacement(mut self, text: impl Into<String>) -> Self {
        self.replacement = Some(text.into());
        self
    }

    /// The range replaced.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The kind counted.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

/// Redaction of one's own, run on each logged message after the built-in redaction (secrets,
/// then personal data when on): given the message's text (the JSON the record will carry,
/// already redacted), it returns the edits to make. Implemented for closures.
///
/// An edit that would break the message (out of range, not on a character boundary,
/// overlapping another, or reaching outside a JSON string value) withholds the message's
/// content instead: the record then says `ContentOmitted: redactor_failed`, so that what the
/// redactor meant to hide is never logged by accident. A redactor that panics does the same,
/// and is counted in [`LogStats::redactor_failures`](crate::LogStats::redactor_failures); the
/// request itself is never touched.
///
/// ```
/// use tower_llm_log::privacy::Edit;
/// use tower_llm_log::{LlmLogLayer, MemorySink};
///
/// // Order numbers of the form ORD-123456.
/// let order = regex::Regex::new(r"ORD-[0-9]{6}").unwrap();
/// let layer = LlmLogLayer::new(MemorySink::new()).with_redactor(move |text: &str| {
///     order.find_iter(text).map(|m| Edit::new(m.range(), "order_id")).collect()
/// });
/// # let _ = layer;
/// ```
pub trait Redactor: Send + Sync + 'static {
    /// The edits to make to `text`.
    fn redact(&self, text: &str) -> Vec<Edit>;
}

impl<F> Redactor for F
where
    F: Fn(&str) -> Vec<Edit> + Send + Sync + 'static,
{
    fn redact(&self, text: &str) -> Vec<Edit> {
        self(text)
    }
}

/// The ranges of the contents of the JSON string values (and keys) in `text`; all of `text`
/// when it is not JSON (an error body in plain text). A string cut short at the end runs to
/// the end.
pub(crate) fn string_spans(text: &[u8]) -> Vec<Range<usize>> {
    if !looks_like_json(text) {
        return std::iter::once(0..text.len()).collect();
    }
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'"', &text[i..]) {
        let start = i + k + 1;
        let mut p = start;
        let end = loop {
            match memchr::memchr2(b'"', b'\\', &text[p..]) {
                None => break text.len(),
                Some(k) if text[p + k] == b'\\' => p = (p + k + 2).min(text.len()),
                Some(k) => break p + k,
            }
        };
        spans.push(start..end);
        i = (end + 1).min(text.len());
        if end >= text.len() {
            break;
        }
    }
    spans
}

/// Whether a logged message is JSON (what the built-in families log) rather than text (an
/// error body such as `[Errno 111] refused`): it starts with `{` or `"`, or with `[` and then
/// a value.
fn looks_like_json(text: &[u8]) -> bool {
    let mut rest = text.iter().copied().filter(|b| !b.is_ascii_whitespace());
    match rest.next() {
        Some(b'{' | b'"') => true,
        Some(b'[') => matches!(
            rest.next(),
            None | Some(b'{' | b'[' | b'"' | b']' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
        ),
        _ => false,
    }
}

/// Whether byte offset `at` of a string's content falls inside an escape sequence (`\n`,
/// `\u00e9`): an edit may not start or end there.
pub(crate) fn inside_escape(text: &[u8], span_start: usize, at: usize) -> bool {
    // An escaping backslash up to five bytes back (`\uXXXX`) whose sequence covers `at`. A
    // backslash escapes when an even number of backslashes precede it.
    (1..=5).any(|d| {
        if at < span_start + d || text[at - d] != b'\\' {
            return false;
        }
        let run = text[span_start..at - d]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        let len = if text.get(at - d + 1) == Some(&b'u') { 6 } else { 2 };
        run % 2 == 0 && d < len
    })
}

/// Why edits could not be applied.
pub(crate) type EditProblem = String;

/// Checks `edits` against `text` (JSON string values only, whole characters, no overlaps).
pub(crate) fn check_edits(text: &str, edits: &mut [Edit]) -> Result<(), EditProblem> {
    let bytes = text.as_bytes();
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let spans = string_spans(bytes);
    let mut last_end = 0;
    for edit in edits.iter() {
        let Range { start, end } = edit.range;
        if start > end || end > text.len() {
            return Err(format!(
                "an edit's range {start}..{end} is outside the text ({} bytes)",
                text.len()
            ));
        }
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return Err(format!("an edit's range {start}..{end} splits a character"));
        }
        if start < last_end {
            return Err(format!("edits overlap at byte {start}"));
        }
        let span = spans.partition_point(|s| s.end < start);
        let inside = spans.get(span).is_some_and(|s| s.start <= start && end <= s.end);
        if !inside
            || inside_escape(bytes, spans[span].start, start)
            || inside_escape(bytes, spans[span].start, end)
        {
            return Err(format!(
                "an edit's range {start}..{end} is not inside one JSON string value"
            ));
        }
        last_end = end;
    }
    Ok(())
}

/// Applies checked edits (sorted, not overlapping); what each replaced, by kind, is counted in
/// `counts`.
pub(crate) fn apply_edits(
    text: &[u8],
    edits: &[Edit],
    counts: &mut std::collections::BTreeMap<String, u32>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16 * edits.len());
    let mut at = 0;
    for edit in edits {
        out.extend_from_slice(&text[at..edit.range.start]);
        match &edit.replacement {
            Some(r) => {
                let quoted = serde_json::to_string(r).unwrap_or_default();
                out.extend_from_slice(
                    quoted
                        .as_bytes()
                        .get(1..quoted.len().saturating_sub(1))
                        .unwrap_or_default(),
                );
            }
            None => {
                let quoted = serde_json::to_string(&*edit.kind).unwrap_or_default();
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(
                    quoted
                        .as_bytes()
                        .get(1..quoted.len().saturating_sub(1))
                        .unwrap_or_default(),
                );
                out.push(b']');
            }
        }
        *counts.entry(edit.kind.to_string()).or_insert(0) += 1;
        at = edit.range.end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn spans_are_the_string_contents() {
        let text = br#"{"a":"x\"y","b":[1,"z"]}"#;
        let spans: Vec<&[u8]> = string_spans(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(spans, [&b"a"[..], b"x\\\"y", b"b", b"z"]);
        assert_eq!(
            string_spans(b"plain text"),
            std::iter::once(0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            string_spans(br#"["cut"#),
            std::iter::once(2..5).collect::<Vec<_>>()
        );
    }

    #[test]
    fn edits_outside_strings_or_inside_escapes_are_refused() {
        let text = r#"{"n":12345,"s":"a\u00e9b\nc"}"#;
        let refuse = |r: Range<usize>| check_edits(text, &mut [Edit::new(r, "x")]).is_err();
        assert!(refuse(5..10), "a number");
        assert!(refuse(1..2), "a quote");
        assert!(refuse(18..19), "inside \\u00e9");
        assert!(refuse(24..25), "inside \\n");
        assert!(refuse(0..100), "out of range");
        assert!(!refuse(17..23), "the whole escape");
        assert!(!refuse(16..17), "a plain character");
        assert!(check_edits(text, &mut [Edit::new(16..18, "x"), Edit::new(17..19, "x")]).is_err());
    }

    #[test]
    fn replacements_are_escaped_and_counted() {
        let text = r#"{"s":"call 555 now"}"#;
        let mut edits = vec![Edit::new(11..14, "num").with_replacement("\"<n>\"\n")];
        check_edits(text, &mut edits).unwrap();
        let mut counts = BTreeMap::new();
        let out = apply_edits(text.as_bytes(), &edits, &mut counts);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["s"], "call \"<n>\"\n now");
        assert_eq!(counts["num"], 1);
    }
}
