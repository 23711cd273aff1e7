//! A reader for small JSON documents of a known shape (the chunks of a stream), for the common
//! case only. It reads the members it is asked for, skips the others with the checks serde
//! makes (the same grammar: strings, escapes, numbers, literals, nesting), and gives up with
//! `None` on anything else: an escaped key, a line break between tokens, a value of another
//! type than asked, nesting past 100. The caller then reads the document with serde, which says
//! what is wrong with it. So the reader never accepts what serde would refuse: it only skips
//! serde's cost for what both read alike.
//!
//! Measured (`scripts/instructions.sh`, 200-event chat streams): serde spent about 6,300
//! instructions on each chat chunk; this reader about a fifth of that.
//!
//! The bytes are UTF-8 already (the caller checked them once).

use std::borrow::Cow;

use crate::json_line::{literal, number, skip_spaces, string_end_escaped, value_end};

/// Where a read is in a document.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        Cursor {
            text,
            bytes,
            at: skip_spaces(bytes, 0),
        }
    }

    fn next_byte(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn step(&mut self, to: usize) {
        self.at = skip_spaces(self.bytes, to);
    }

    /// Whether nothing but spaces is left.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Reads `null` if it is next.
    pub(crate) fn null(&mut self) -> bool {
        match literal(self.bytes, self.at, b"null") {
            Some(end) => {
                self.step(end);
                true
            }
            None => false,
        }
    }

    /// Reads an object, calling `member` with each key (as written, unescaped keys only) with
    /// the cursor at its value; `member` must read or skip the value.
    // Inlined into each reader so the member closures are too: without it a chat chunk cost
    // 5,500 instructions instead of 5,140 (`scripts/instructions.sh`, `CASES=stream`).
    #[inline]
    pub(crate) fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.sequence(b'{', b'}', |c| {
            let key = c.key()?;
            member(c, key)
        })
    }

    /// Reads an array, calling `element` with the cursor at each element.
    #[inline]
    pub(crate) fn array(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.sequence(b'[', b']', element)
    }

    /// Reads member number `field` of an object, `null` or an array, calling `element` at each
    /// element; gives up on a member read before. Whether it was an array.
    pub(crate) fn array_member(
        &mut self,
        seen: &mut u32,
        field: u32,
        element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<bool> {
        first_time(seen, field)?;
        if self.null() {
            return Some(false);
        }
        self.array(element)?;
        Some(true)
    }

    /// `open`, items separated by commas (each read by `item`), `close`.
    #[inline]
    fn sequence(&mut self, open: u8, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.next_byte()? != open {
            return None;
        }
        self.step(self.at + 1);
        if self.next_byte()? == close {
            self.step(self.at + 1);
            return Some(());
        }
        loop {
            item(self)?;
            match self.next_byte()? {
                b',' => self.step(self.at + 1),
                b if b == close => {
                    self.step(self.at + 1);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object member's key and its colon: the key as written (escaped keys are left to
    /// serde), the cursor at the value.
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        if self.next_byte()? != b'"' {
            return None;
        }
        let (end, escaped) = string_end_escaped(self.bytes, self.at)?;
        if escaped {
            return None;
        }
        let key = &self.bytes[self.at + 1..end - 1];
        self.step(end);
        if self.next_byte()? != b':' {
            return None;
        }
        self.step(self.at + 1);
        Some(key)
    }

    /// Reads a string: borrowed when it has no escapes, else unescaped by serde (which refuses
    /// what it refuses elsewhere, such as a lone surrogate).
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.next_byte()? != b'"' {
            return None;
        }
        let (end, escaped) = string_end_escaped(self.bytes, self.at)?;
        let text = if !escaped {
            Cow::Borrowed(self.text.get(self.at + 1..end - 1)?)
        } else {
            Cow::Owned(serde_json::from_str::<String>(self.text.get(self.at..end)?).ok()?)
        };
        self.step(end);
        Some(text)
    }

    /// Reads a string or `null`.
    pub(crate) fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// Reads member number `field` of an object, a string or `null`, into `slot`; gives up on a
    /// member read before (`seen` holds one bit per member).
    pub(crate) fn string_member(
        &mut self,
        seen: &mut u32,
        field: u32,
        slot: &mut Option<Cow<'a, str>>,
    ) -> Option<()> {
        first_time(seen, field)?;
        *slot = self.string_or_null()?;
        Some(())
    }

    /// Reads member number `field` of an object, a whole number that fits a `u32`, into `slot`;
    /// gives up on a member read before.
    pub(crate) fn u32_member(&mut self, seen: &mut u32, field: u32, slot: &mut u32) -> Option<()> {
        first_time(seen, field)?;
        *slot = self.u32()?;
        Some(())
    }

    /// Reads a whole number that fits a `u32`.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.whole()
    }

    /// Reads a whole number that fits a `u64`.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.whole()
    }

    fn whole<T: std::str::FromStr>(&mut self) -> Option<T> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let end = number(self.bytes, self.at)?;
        let digits = &self.bytes[self.at..end];
        // Digits only: serde refuses `-1` and `1.0` for a u32 too, with its own words.
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
        self.step(end);
        Some(n)
    }

    /// Skips one value of any kind.
    pub(crate) fn skip(&mut self) -> Option<()> {
        let end = value_end(self.bytes, self.at)?;
        self.step(end);
        Some(())
    }
}

/// Notes that a field was read: `None` when it was read before (serde refuses a duplicate
/// field; the caller gives up so that serde says so).
pub(crate) fn first_time(seen: &mut u32, field: u32) -> Option<()> {
    let bit = 1 << field;
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut c = Cursor::new(text);
        c.object(|c, key| {
            let value = match c.string_or_null() {
                Some(v) => v.map(|v| v.into_owned()).unwrap_or_else(|| "null".into()),
                None => {
                    c.skip()?;
                    "(skipped)".into()
                }
            };
            out.push((String::from_utf8(key.to_vec()).ok()?, value));
            Some(())
        })?;
        c.at_end().then_some(out)
    }

    #[test]
    fn reads_strings_and_skips_the_rest() {
        let got = members(r#"{"a":"x","b":null,"c":[1,{"d":2.5e3}],"e":"caf\u00e9 \"q\""}"#).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), "x".into()),
                ("b".into(), "null".into()),
                ("c".into(), "(skipped)".into()),
                ("e".into(), "café \"q\"".into()),
            ]
        );
        assert_eq!(members(" { } ").unwrap(), vec![]);
    }

    #[test]
    fn gives_up_where_serde_would_refuse_or_where_it_cannot_tell() {
        for text in [
            r#"{"a":"x",}"#,
            r#"{"a":[1,}]}"#,
            r#"{"a":"x"} trailing"#,
            r#"{"\u0061":"x"}"#,
            "{\"a\":\n\"x\"}",
            r#"{"a":01}"#,
            r#"{"a":"x""#,
            "{\"a\":\"tab\there\"}",
            r#"["not an object"]"#,
        ] {
            assert!(members(text).is_none(), "{text}");
        }
    }

    #[test]
    fn escaped_strings_read_as_serde_reads_them() {
        for text in [r#""\ud800""#, r#""\ud83d\ude00 \n""#, r#""\u00e9""#, r#""a\/b""#] {
            let ours = Cursor::new(text).string().map(Cow::into_owned);
            assert_eq!(ours, serde_json::from_str::<String>(text).ok(), "{text}");
        }
    }

    #[test]
    fn whole_numbers_only_for_u32() {
        for (text, want) in [("7", Some(7)), ("0", Some(0)), ("4294967295", Some(u32::MAX))] {
            assert_eq!(Cursor::new(text).u32(), want, "{text}");
        }
        for text in ["-1", "1.0", "1e2", "4294967296", "null", "\"1\""] {
            assert_eq!(Cursor::new(text).u32(), None, "{text}");
        }
    }

    #[test]
    fn a_field_read_twice_is_noticed() {
        let mut seen = 0;
        assert!(first_time(&mut seen, 3).is_some());
        assert!(first_time(&mut seen, 4).is_some());
        assert!(first_time(&mut seen, 3).is_none());
    }
}
