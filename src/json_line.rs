//! Whether a message may go into a JSON Lines line as the JSON value it is: exactly one valid
//! JSON value (RFC 8259), with no line break anywhere.
//!
//! The writer asks this of every message a reader marked as whole JSON (the readers' scanner
//! checks the structure it walks but only delimits the values it skips), so it must cost less
//! than the string escaping it saves: strings, most of a message, are crossed a word at a time;
//! serde's validation of the same bytes measured slower than escaping them.

/// Nesting deeper than this is taken as not fit (and written as a string instead): below
/// serde_json's recursion limit (128), so every line written reads back.
const MAX_DEPTH: usize = 100;

/// Whether `bytes` is one JSON value, whitespace around it allowed, with no `\n` or `\r`.
/// The bytes are UTF-8 already (records hold validated text); they are not checked again.
pub(crate) fn fits_one_line(bytes: &[u8]) -> bool {
    let start = skip_spaces(bytes, 0);
    value_end(bytes, start).is_some_and(|end| skip_spaces(bytes, end) == bytes.len())
}

/// Where the JSON value starting at `i` ends (just past it), if it is one valid value with no
/// line break in it and nesting at most [`MAX_DEPTH`] deep. The bytes are UTF-8 already.
pub(crate) fn value_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    let mut stack = [0u8; MAX_DEPTH];
    let mut depth = 0;
    // `true` when a value is expected, `false` when one has just ended.
    let mut want_value = true;
    loop {
        if want_value {
            let &b = bytes.get(i)?;
            match b {
                b'{' | b'[' => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    stack[depth] = b;
                    depth += 1;
                    i = skip_spaces(bytes, i + 1);
                    let close = if b == b'{' { b'}' } else { b']' };
                    if bytes.get(i) == Some(&close) {
                        depth -= 1;
                        i += 1;
                        want_value = false;
                    } else if b == b'{' {
                        i = key(bytes, i)?;
                    }
                }
                b'"' => {
                    i = string_end(bytes, i)?;
                    want_value = false;
                }
                b't' => {
                    i = literal(bytes, i, b"true")?;
                    want_value = false;
                }
                b'f' => {
                    i = literal(bytes, i, b"false")?;
                    want_value = false;
                }
                b'n' => {
                    i = literal(bytes, i, b"null")?;
                    want_value = false;
                }
                b'-' | b'0'..=b'9' => {
                    i = number(bytes, i)?;
                    want_value = false;
                }
                _ => return None,
            }
            continue;
        }
        if depth == 0 {
            return Some(i);
        }
        i = skip_spaces(bytes, i);
        let &b = bytes.get(i)?;
        let open = stack[depth - 1];
        match (b, open) {
            (b',', b'{') => {
                i = key(bytes, skip_spaces(bytes, i + 1))?;
                want_value = true;
            }
            (b',', _) => {
                i = skip_spaces(bytes, i + 1);
                want_value = true;
            }
            (b'}', b'{') | (b']', b'[') => {
                depth -= 1;
                i += 1;
            }
            _ => return None,
        }
    }
}

/// Spaces and tabs (line breaks are not allowed at all).
pub(crate) fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// A member's key and its colon, from `i` (at the key's quote): where its value starts.
pub(crate) fn key(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_spaces(bytes, string_end(bytes, i)?);
    (bytes.get(i) == Some(&b':')).then(|| skip_spaces(bytes, i + 1))
}

/// The bytes of `w` (eight, little-endian) that are `"`, `\\` or a control character (below
/// 0x20), each marked by its high bit: the bytes a string's plain run ends at. Exact for the
/// lowest marked byte (a borrow can only mark bytes above a true one), which is all a caller
/// reads: a word at a time beats `memchr` on the short runs between escapes of JSON text.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_0x20 = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    zero_byte(w ^ (ONES * u64::from(b'"'))) | zero_byte(w ^ (ONES * u64::from(b'\\'))) | below_0x20
}

/// The end of the string starting at `i` (its opening quote), just past its closing quote.
pub(crate) fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    string_end_escaped(bytes, i).map(|(end, _)| end)
}

/// As [`string_end`], and whether the string has an escape.
pub(crate) fn string_end_escaped(bytes: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    i += 1;
    loop {
        // To the next special byte: a word at a time, the byte itself found from the word's
        // mask, for the short runs of keys, ids and escape-dense text; past four plain words,
        // a run of prose (a message) is crossed by `memchr` (SIMD) and checked for control
        // characters in one vectorised sweep: measured 2.5 instructions a byte the word way,
        // under 0.5 this way. Byte by byte in the last seven bytes of the input.
        let mut words = 0;
        loop {
            if words == 4 {
                let rest = &bytes[i..];
                let run = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                // No early exit, so that it vectorises: the run is scanned whole.
                let control = rest[..run].iter().fold(false, |any, &b| any | (b < 0x20));
                if control {
                    // Where exactly matters not: the string is not valid.
                    return None;
                }
                i += run;
                bytes.get(i)?;
                break;
            }
            if let Some(word) = bytes.get(i..i + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                let special = special_bytes(u64::from_le_bytes(w));
                if special == 0 {
                    i += 8;
                    words += 1;
                    continue;
                }
                i += special.trailing_zeros() as usize / 8;
                break;
            }
            let &b = bytes.get(i)?;
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            i += 1;
        }
        match bytes[i] {
            b'"' => return Some((i + 1, escaped)),
            // Control characters (line breaks among them) must be escaped inside strings.
            b if b < 0x20 => return None,
            _ => {}
        }
        escaped = true;
        i += 1;
        match *bytes.get(i)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
            b'u' => {
                let hex = bytes.get(i + 1..i + 5)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                i += 5;
            }
            _ => return None,
        }
    }
}

pub(crate) fn literal(bytes: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    bytes[i..].starts_with(word).then_some(i + word.len())
}

/// The end of the number starting at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn number(bytes: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if bytes[i] == b'-' {
        i += 1;
    }
    match bytes.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i += digits(i),
        _ => return None,
    }
    if bytes.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the check must say: serde's verdict, and no line break.
    fn expected(text: &str) -> bool {
        !text.contains(['\n', '\r']) && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn agrees_with_serde_on_cases() {
        for text in [
            r#"{"a":[1,2.5,-3e-2,true,false,null,"x\"y\\u00e9"],"b":{}}"#,
            "[]",
            " [ 1 , { } ] ",
            r#""just a string""#,
            "0",
            "-0.0e+1",
            r#"{"a":[1,}}"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a" 1}"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":1} x"#,
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "nul",
            r#""\x""#,
            r#""\u12G4""#,
            "\"a\tb\"",
            "{\"a\":\n1}",
            "[1]\r",
            "",
            "   ",
            r#"{"a":[}"#,
            r#"[{]}"#,
            r#"{1:2}"#,
            r#""unterminated"#,
        ] {
            assert_eq!(fits_one_line(text.as_bytes()), expected(text), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(!fits_one_line(deep.as_bytes()));
        let fine = "[".repeat(100) + &"]".repeat(100);
        assert!(fits_one_line(fine.as_bytes()));
        let past = "[".repeat(101) + &"]".repeat(101);
        assert!(!fits_one_line(past.as_bytes()));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_serde(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "\"k\"", "\"v\\\"w\"", "1", "-2.5e3", "true", "null",
                " ", "\n", "\"a", "\\", "0", "x", "\"\\u00e9\"", "01",
            ]),
            0..16,
        )) {
            let text: String = parts.concat();
            proptest::prop_assert_eq!(fits_one_line(text.as_bytes()), expected(&text), "{:?}", text);
        }

        /// Strings long enough for the SIMD run (past four plain words), with a quote, an
        /// escape, a control character or nothing at any place in them.
        #[test]
        fn long_strings_agree_with_serde(
            run in "[a-zé ]{0,120}",
            at in 0usize..130,
            odd in proptest::sample::select(vec!["", "\"", "\\n", "\\", "\n", "\u{1}", "\t", "\\u00e9"]),
            closed in proptest::bool::ANY,
        ) {
            let mut inner = run.clone();
            let at = inner.char_indices().map(|(i, _)| i).chain([inner.len()]).find(|&i| i >= at.min(inner.len())).unwrap_or(0);
            inner.insert_str(at, odd);
            let text = format!("[\"{inner}{}]", if closed { "\"" } else { "" });
            proptest::prop_assert_eq!(fits_one_line(text.as_bytes()), expected(&text), "{:?}", text);
        }
    }
}
