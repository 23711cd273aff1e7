//! What the stream assemblers of every family share: a text budget (the completion cap), short
//! fields clipped, a bound on the parts kept, and the tally of events that could not be read.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::Serialize;

use super::BodyFacts;
use crate::capture::LoggedMessage;

/// The most parts (choices, output items, content blocks, tool calls) assembled per stream; more
/// are reported, not kept.
pub(crate) const MAX_PARTS: usize = 1024;
/// Ids, types, roles and finish reasons are short; longer ones are clipped to this many bytes.
const SMALL_FIELD: usize = 256;

/// A short field, clipped to [`SMALL_FIELD`] bytes at a character boundary.
pub(crate) fn clip(s: &str) -> String {
    let mut end = s.len().min(SMALL_FIELD);
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
}

impl TextBudget {
    pub(crate) fn new(cap: usize) -> Self {
        TextBudget {
            left: cap,
            dropped_escaped: 0,
        }
    }

    /// Appends `text` to `target` while budget remains; counts the JSON-escaped size of the rest.
    pub(crate) fn append(&mut self, target: &mut String, text: &str) {
        if text.len() <= self.left {
            target.push_str(text);
            self.left -= text.len();
            return;
        }
        let mut keep = self.left;
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
        target.push_str(&text[..keep]);
        self.left = 0;
        self.dropped_escaped += escaped_len(&text[keep..]);
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
    facts.errors.extend(tally.summary());
    facts.stream = true;
    facts.stream_ended = ended;
    facts
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
