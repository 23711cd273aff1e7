//! What the stream assemblers of every family share: a text budget (the completion cap), short
//! fields clipped, a bound on the parts kept, and the tally of events that could not be read.
//!
//! What an assembled stream holds stays within its cap plus a quarter plus a few KiB: the text
//! and every per-part field (ids, names) are paid for from the one budget, buffers never grow
//! past what the budget still allows (so one part's text stays within the cap), the room they
//! hold beyond their text is bounded, and at most [`MAX_PARTS`] parts are kept.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::Serialize;

use super::{BodyFacts, Problem, ProblemKind, StreamEvent};
use crate::capture::LoggedMessage;

/// The most parts (choices, output items and their content parts, content blocks, tool calls)
/// assembled per stream; more are reported, not kept. An agent's Responses stream can carry a
/// hundred tool-call items and their parts before its final message; a part costs about 200
/// bytes of bookkeeping beyond the text it keeps, so this bounds that at about 50 KiB.
pub(crate) const MAX_PARTS: usize = 256;
/// Ids, types, roles and finish reasons are short; longer ones are clipped to this many bytes.
const SMALL_FIELD: usize = 256;
/// The least a part's text buffer grows by.
const GROWTH_MIN: usize = 16;
/// Room beyond the text that buffers may hold while growing by doubling, besides an eighth of
/// the cap.
const SPARE_SLACK: usize = 4096;
/// Types, roles and finish reasons kept per part are clipped shorter still (they are words like
/// `text`, `assistant`, `stop`).
const WORD_FIELD: usize = 64;

/// A short field, clipped to [`SMALL_FIELD`] bytes at a character boundary.
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, SMALL_FIELD)
}

/// [`clip`] of a string one owns: cut in place, no copy.
pub(crate) fn clip_owned(mut s: String) -> String {
    if s.len() > SMALL_FIELD {
        let mut end = SMALL_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A per-part word (a type, a role, a finish reason), clipped to [`WORD_FIELD`] bytes.
pub(crate) fn clip_word(s: &str) -> String {
    clip_to(s, WORD_FIELD)
}

fn clip_to(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The bytes of text a stream may still keep, and the escaped size of what it could not.
#[derive(Debug, Default)]
pub(crate) struct TextBudget {
    left: usize,
    dropped_escaped: u64,
    /// The room the parts' text buffers hold beyond their text, all together.
    spare: usize,
    /// How much room may be held beyond the text while buffers still grow by doubling.
    spare_slack: usize,
}

impl TextBudget {
    pub(crate) fn new(cap: usize) -> Self {
        TextBudget {
            left: cap,
            dropped_escaped: 0,
            spare: 0,
            spare_slack: cap / 8 + SPARE_SLACK,
        }
    }

    /// Appends `text` to `target` while budget remains; counts the JSON-escaped size of the rest.
    pub(crate) fn append(&mut self, target: &mut String, text: &str) {
        let mut keep = text.len().min(self.left);
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
        let kept = &text[..keep];
        let spare_before = target.capacity() - target.len();
        if spare_before < kept.len() {
            // Grow by doubling, as a `String` does, while the room all buffers hold beyond their
            // text stays within `spare_slack`; past that, by an eighth. And never past what the
            // budget still allows: one part's buffer stays within the cap, and the buffers of
            // many parts within the cap + `spare_slack` + an eighth of the cap.
            let others = self.spare.saturating_sub(spare_before);
            let doubling = target.len().max(GROWTH_MIN);
            let spare = if others + doubling <= self.spare_slack {
                doubling
            } else {
                (target.len() / 8).max(GROWTH_MIN)
            };
            target.reserve_exact(kept.len() + spare.min(self.left - keep));
        }
        target.push_str(kept);
        self.spare = self.spare.saturating_sub(spare_before) + (target.capacity() - target.len());
        self.left -= keep;
        if keep < text.len() {
            self.dropped_escaped += escaped_len(&text[keep..]);
        }
    }

    /// A short per-part field (an id, a name), clipped and paid for from the budget: once the
    /// budget is spent, fields are counted, not kept (`None`).
    pub(crate) fn field(&mut self, text: &str) -> Option<String> {
        let clipped = clip(text);
        if clipped.len() <= self.left {
            self.left -= clipped.len();
            Some(clipped)
        } else {
            self.dropped_escaped += escaped_len(text);
            None
        }
    }

    /// A value kept whole or not at all (a tool call's arguments as JSON): paid for from the
    /// budget when it fits, else counted.
    pub(crate) fn whole(&mut self, text: &str) -> bool {
        if text.len() <= self.left {
            self.left -= text.len();
            true
        } else {
            self.dropped_escaped += escaped_len(text);
            false
        }
    }

    /// Text that is not kept at all, counted in the message's size.
    pub(crate) fn drop(&mut self, text: &str) {
        self.dropped_escaped += escaped_len(text);
    }

    /// The assembled value, serialized and cut to `cap`; its size counts what was dropped.
    pub(crate) fn finish(&self, value: &impl Serialize, cap: usize) -> LoggedMessage {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let total = json.len() as u64 + self.dropped_escaped;
        let mut message = LoggedMessage::from_vec(json, cap);
        message.total = total;
        message.truncated |= total > message.segments.iter().map(|s| s.len() as u64).sum::<u64>();
        message
    }
}

/// What an assembled stream says: `value` (the assembled completion) as the message, cut to
/// `cap`, the problems tallied, and whether the stream said it was done.
pub(crate) fn stream_facts(
    mut facts: BodyFacts,
    budget: &TextBudget,
    value: &impl Serialize,
    cap: usize,
    tally: &mut EventTally,
    ended: bool,
) -> BodyFacts {
    facts.message = budget.finish(value, cap);
    // Serialized by serde: one whole JSON value unless the cap cut it.
    facts.whole_json = !facts.message.truncated;
    facts
        .errors
        .extend(tally.summary().map(|s| Problem::new(ProblemKind::Stream, s)));
    facts.stream = true;
    facts.stream_ended = ended;
    facts
}

/// What every stream assembler keeps besides its parts: the facts found so far, the text budget
/// (the completion cap), the tally of events, and whether the stream said it was done.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) facts: BodyFacts,
    pub(crate) budget: TextBudget,
    pub(crate) tally: EventTally,
    pub(crate) cap: usize,
    pub(crate) ended: bool,
}

impl StreamState {
    pub(crate) fn new(cap: usize) -> Self {
        StreamState {
            facts: BodyFacts::default(),
            budget: TextBudget::new(cap),
            tally: EventTally::default(),
            cap,
            ended: false,
        }
    }

    /// A token arrived (the first one's time is the stream's time to first token).
    pub(crate) fn token(&mut self) {
        self.facts
            .first_token_at
            .get_or_insert_with(std::time::Instant::now);
    }

    /// What the stream said: `value` (the assembled completion) as the message, cut to the cap.
    pub(crate) fn finish(&mut self, value: &impl Serialize) -> BodyFacts {
        let facts = std::mem::take(&mut self.facts);
        stream_facts(facts, &self.budget, value, self.cap, &mut self.tally, self.ended)
    }
}

/// Reads JSON as `T`, its UTF-8 checked once with SIMD instead of by serde string by string
/// (measured: about 1,100 of the 7,600 instructions a chat chunk cost went to those checks).
pub(crate) fn from_json<'e, T: serde::Deserialize<'e>>(data: &'e [u8]) -> serde_json::Result<T> {
    from_json_or(data, |_| None)
}

/// As [`from_json`], trying `quick` on the checked text first (a reader for the common case
/// that returns `None` for anything it leaves to serde): the text is checked once for both.
pub(crate) fn from_json_or<'e, T: serde::Deserialize<'e>>(
    data: &'e [u8],
    quick: impl FnOnce(&'e str) -> Option<T>,
) -> serde_json::Result<T> {
    match simdutf8::basic::from_utf8(data) {
        Ok(text) => quick(text).map_or_else(|| serde_json::from_str(text), Ok),
        // Read again by serde, whose error says where the invalid byte is.
        Err(_) => serde_json::from_slice(data),
    }
}

/// Reads an optional string as a borrowed slice of the event when it has no escapes, as
/// `#[serde(borrow)]` alone does not do for `Option<Cow<str>>` (it always copies). A stream's
/// events are parsed one after another on the traffic's task: each copy is an allocation.
pub(crate) fn cow_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Str;
    impl<'de> Visitor<'de> for Str {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    struct OptionStr;
    impl<'de> Visitor<'de> for OptionStr {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(Str).map(Some)
        }
    }
    d.deserialize_option(OptionStr)
}

/// Reads a short value that may be a string, a number or a boolean (an error `code`, which
/// providers send either way) as text; `null` is none.
pub(crate) fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a number, a boolean or null")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(clip(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Text)
        }
    }
    d.deserialize_option(Text)
}

/// The length of `s` once escaped in a JSON string, as serde_json writes it.
pub(crate) fn escaped_len(s: &str) -> u64 {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
            0x00..=0x1F => 6,
            _ => 1,
        })
        .sum()
}

/// Events seen, and the first of those that could not be read.
#[derive(Debug, Default)]
pub(crate) struct EventTally {
    pub(crate) events: u64,
    bad: u64,
    first: Option<String>,
}

impl EventTally {
    /// Counts an event; `false` when it was oversized (and is reported).
    pub(crate) fn next(&mut self, oversized: bool) -> bool {
        self.events += 1;
        if oversized {
            self.note(format!(
                "event {} is larger than the parse limit and was skipped",
                self.events
            ));
        }
        !oversized
    }

    /// Counts the next event and reads its data as `T`: `None` when it is oversized or does
    /// not read (reported as not being `what`, `"a Messages API event"`).
    pub(crate) fn read<'e, T: serde::Deserialize<'e>>(
        &mut self,
        event: &StreamEvent<'e>,
        what: &str,
    ) -> Option<T> {
        if !self.next(event.oversized) {
            return None;
        }
        from_json(event.data).map_err(|e| self.unreadable(what, e)).ok()
    }

    /// The current event could not be read as `what` (`"a chat completion chunk"`).
    pub(crate) fn unreadable(&mut self, what: &str, error: impl fmt::Display) {
        self.note(format!("event {} is not {what}: {error}", self.events));
    }

    /// The stream carried an error (an error event, an error object, an exception): `text`
    /// says what it was, clipped.
    pub(crate) fn carried_error(&mut self, text: &str) {
        self.note(format!("the stream carried an error: {}", clip(text)));
    }

    pub(crate) fn note(&mut self, message: String) {
        self.bad += 1;
        if self.first.is_none() {
            self.first = Some(message);
        }
    }

    /// The first problem, and how many more there were.
    pub(crate) fn summary(&mut self) -> Option<String> {
        let first = self.first.take()?;
        Some(if self.bad > 1 {
            format!("{first} (and {} more problems)", self.bad - 1)
        } else {
            first
        })
    }
}

/// Counts parts against [`MAX_PARTS`], reporting once when the bound is first reached.
#[derive(Debug, Default)]
pub(crate) struct PartBound {
    parts: usize,
    dropped: u64,
}

impl PartBound {
    /// Whether another part may be kept.
    pub(crate) fn admit(&mut self, tally: &mut EventTally, what: &str) -> bool {
        if self.parts < MAX_PARTS {
            self.parts += 1;
            return true;
        }
        if self.dropped == 0 {
            tally.note(format!("more than {MAX_PARTS} {what}; the rest are not logged"));
        }
        self.dropped += 1;
        false
    }
}

/// Parts (candidates, content blocks, tool calls) that a stream names by index, kept in the
/// order they first appear, at most [`MAX_PARTS`] of them, and finished in index order.
#[derive(Debug)]
pub(crate) struct Indexed<T> {
    items: Vec<(u32, T)>,
    bound: PartBound,
}

impl<T> Default for Indexed<T> {
    fn default() -> Self {
        Indexed {
            items: Vec::new(),
            bound: PartBound::default(),
        }
    }
}

impl<T: Default> Indexed<T> {
    /// The part at `index`, made when first seen; `None` past the bound (reported once as
    /// "more than 256 `what`").
    pub(crate) fn get(&mut self, index: u32, tally: &mut EventTally, what: &str) -> Option<&mut T> {
        // Streams add to their latest part far more often than to any other.
        let at = match self.items.last() {
            Some((last, _)) if *last == index => Some(self.items.len() - 1),
            _ => self.items.iter().position(|(i, _)| *i == index),
        };
        let at = match at {
            Some(at) => at,
            None if self.bound.admit(tally, what) => {
                self.items.push((index, T::default()));
                self.items.len() - 1
            }
            None => return None,
        };
        Some(&mut self.items[at].1)
    }

    /// The parts in index order.
    pub(crate) fn into_sorted(mut self) -> Vec<T> {
        self.items.sort_by_key(|(i, _)| *i);
        self.items.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD check then `from_str` reads what `from_slice` reads, and fails where it fails,
    /// with serde's words for the invalid byte.
    #[test]
    fn json_reads_as_serde_reads_it() {
        let cases: [&[u8]; 6] = [
            br#"{"a":"caf\u00e9","b":[1,2]}"#,
            "{\"a\":\"caf\u{e9}\"}".as_bytes(),
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xe2\x82\"}",
            br#"{"a":"\ud800"}"#,
            b"{\"a\":",
        ];
        for data in cases {
            let ours = from_json::<serde_json::Value>(data).map_err(|e| e.to_string());
            let serde = serde_json::from_slice::<serde_json::Value>(data).map_err(|e| e.to_string());
            assert_eq!(ours, serde, "{}", String::from_utf8_lossy(data));
        }
        assert!(from_json::<serde_json::Value>(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn optional_strings_borrow_unless_escaped() {
        #[derive(serde::Deserialize)]
        struct W<'a> {
            #[serde(borrow, default, deserialize_with = "cow_str")]
            a: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "cow_str")]
            b: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "cow_str")]
            c: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "cow_str")]
            d: Option<Cow<'a, str>>,
        }
        let w: W<'_> = serde_json::from_str(r#"{"a":"plain","b":"esc\"aped","c":null}"#).unwrap();
        assert!(matches!(w.a, Some(Cow::Borrowed("plain"))));
        assert!(matches!(w.b.as_deref(), Some("esc\"aped")));
        assert!(matches!(w.b, Some(Cow::Owned(_))));
        assert!(w.c.is_none() && w.d.is_none());
        assert!(serde_json::from_str::<W<'_>>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn the_budget_cuts_at_a_character_and_counts_the_rest_escaped() {
        let mut budget = TextBudget::new(3);
        let mut s = String::new();
        budget.append(&mut s, "aé\"b");
        assert_eq!(s, "aé");
        assert_eq!(budget.dropped_escaped, 3); // `\"b`
        budget.append(&mut s, "more");
        assert_eq!(s, "aé");
        let m = budget.finish(&s, 100);
        assert_eq!(m.total, 5 + 3 + 4);
        assert!(m.truncated);
    }

    #[test]
    fn strings_of_many_parts_never_grow_past_the_budget() {
        for cap in [1000usize, 32 * 1024, 300_000] {
            let mut budget = TextBudget::new(cap);
            let mut parts: Vec<String> = (0..100).map(|_| String::new()).collect();
            // Deltas of every size, to every part in turn, until the budget is long spent.
            for i in 0..20_000usize {
                let delta = "x".repeat(1 + i % 97);
                budget.append(&mut parts[i % 100], &delta);
            }
            let capacity: usize = parts.iter().map(String::capacity).sum();
            let len: usize = parts.iter().map(String::len).sum();
            assert_eq!(len, cap);
            assert!(
                capacity <= cap + cap / 4 + SPARE_SLACK + 100 * GROWTH_MIN,
                "cap {cap}: buffers hold {capacity} bytes"
            );
        }
    }

    #[test]
    fn one_part_never_grows_past_the_budget() {
        for cap in [100usize, 32 * 1024, 2 << 20] {
            let mut budget = TextBudget::new(cap);
            let mut text = String::new();
            for i in 0..(cap / 3 + 10) {
                budget.append(&mut text, &"y".repeat(1 + i % 7));
            }
            assert_eq!(text.len(), cap);
            assert_eq!(text.capacity(), cap, "not a byte of spare room beyond the cap");
        }
    }

    #[test]
    fn indexed_parts_are_bounded_and_sorted() {
        let mut parts = Indexed::<String>::default();
        let mut tally = EventTally::default();
        for i in (0..300u32).rev() {
            if let Some(p) = parts.get(i, &mut tally, "parts") {
                p.push('x');
            }
        }
        parts.get(299, &mut tally, "parts").unwrap().push('y');
        assert!(parts.get(0, &mut tally, "parts").is_none());
        let sorted = parts.into_sorted();
        assert_eq!(sorted.len(), MAX_PARTS);
        assert_eq!(sorted.last().map(String::as_str), Some("xy"));
        assert_eq!(
            tally.summary().as_deref(),
            Some("more than 256 parts; the rest are not logged")
        );
    }

    #[test]
    fn fields_are_paid_for_from_the_budget() {
        let mut budget = TextBudget::new(10);
        assert_eq!(budget.field("call_1").as_deref(), Some("call_1"));
        assert_eq!(
            budget.field("function"),
            None,
            "over the budget: counted, not kept"
        );
        assert_eq!(budget.dropped_escaped, 8);
        let long = "n".repeat(1000);
        let mut budget = TextBudget::new(1 << 20);
        assert_eq!(budget.field(&long).map(|f| f.len()), Some(SMALL_FIELD));
    }
}
