//! Personal data in logged text (opt-in, [`LogConfigBuilder::redact_pii`](crate::LogConfigBuilder::redact_pii)):
//! e-mail addresses, phone numbers, payment card numbers, IBANs, IP addresses and US social
//! security numbers, found inside the JSON string values of a logged message.
//!
//! Each detector checks what it finds, so that order ids, dates and versions stay: card numbers
//! pass the Luhn check and start like a card issuer's; IBANs pass their mod-97 check; IPv4
//! parts are at most 255; IPv6 addresses parse and hold a digit; social security numbers are
//! written `ddd-dd-dddd` with a valid area; phone numbers start with `+` (E.164, 8 to 15
//! digits) or are written in a national grouping (`(555) 123-4567`, `555-123-4567`,
//! `020 7946 0958`). The scan is one pass over the string values, looking only at digits,
//! `@`, `+`, `(` and `:`; what a detector looks at around them is bounded, so any text costs
//! bounded time per byte.
//!
//! ```
//! use tower_llm_log::privacy::find_pii;
//!
//! let text = r#"{"content":"mail jane.doe@example.com or call +44 20 7946 0958, order 4111111111111112"}"#;
//! let kinds: Vec<&str> = find_pii(text).iter().map(|found| found.kind).collect();
//! assert_eq!(kinds, ["email", "phone"]);
//! ```

use std::net::Ipv6Addr;
use std::ops::Range;

use hmac::{Hmac, Mac};

use super::edit::inside_escape;
use sha2::Sha256;

/// A key for keyed hashes (PII tags, `api_key` fingerprints); never printed. The HMAC state
/// is keyed once, so each hash costs only its message's blocks.
#[derive(Clone)]
pub(crate) struct HashKey {
    len: usize,
    keyed: Option<Hmac<Sha256>>,
}

impl HashKey {
    pub(crate) fn new(key: Vec<u8>) -> Self {
        HashKey {
            len: key.len(),
            keyed: Hmac::<Sha256>::new_from_slice(&key).ok(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first 16 hex digits of HMAC-SHA256(key, `message`).
    pub(crate) fn hex16(&self, message: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(16);
        if let Some(mut mac) = self.keyed.clone() {
            mac.update(message);
            for b in &mac.finalize().into_bytes()[..8] {
                let _ = write!(out, "{b:02x}");
            }
        }
        out
    }

    /// `[<kind>:<16 hex digits>]`: the start of HMAC-SHA256(key, normalised value).
    pub(crate) fn tag(&self, kind: &str, value: &str) -> String {
        format!("[{kind}:{}]", self.hex16(normalized(kind, value).as_bytes()))
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey([secret])")
    }
}

/// One piece of personal data found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiFound {
    /// Where it is in the text.
    pub range: Range<usize>,
    /// `email`, `phone`, `card`, `iban`, `ip_address` or `ssn`.
    pub kind: &'static str,
}

/// What the scan stops at: a digit (a number starts there, or at a `+` or `(` just before
/// it), or an `@` or `:` inside a match.
const TRIGGER: [bool; 256] = {
    let mut t = [false; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = true;
        d += 1;
    }
    t[b'@' as usize] = true;
    t[b':' as usize] = true;
    t
};

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES * 128;

/// Whether a word of eight bytes may hold a trigger: a digit, `:` or `@` (0x30 to 0x40; a
/// superset: the bytes are checked one by one then). `+` and `(` are looked at from the digit
/// after them.
fn may_trigger(word: u64) -> bool {
    // ASCII bytes above 0x2F and below 0x41 (the classic "has a byte between" test; bytes
    // with the high bit, as in UTF-8 sequences, never count).
    let low = word & (ONES * 127);
    (ONES * (127 + 0x41)).wrapping_sub(low) & !word & low.wrapping_add(ONES * (127 - 0x2F)) & HIGHS != 0
}

/// The personal data in `text`, a logged message (JSON: only string values are searched; any
/// other text: all of it), in order, not overlapping.
pub fn find_pii(text: &str) -> Vec<PiiFound> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut in_span = Vec::new();
    for span in super::edit::string_spans(bytes) {
        scan_span(bytes, span.clone(), &mut in_span);
        // Never an edit that starts or ends inside an escape sequence: it would break the JSON.
        found.extend(in_span.drain(..).filter(|f| {
            !inside_escape(bytes, span.start, f.range.start) && !inside_escape(bytes, span.start, f.range.end)
        }));
    }
    found
}

fn scan_span(text: &[u8], span: Range<usize>, found: &mut Vec<PiiFound>) {
    let end = span.end;
    let mut i = span.start;
    while i < end {
        // Eight bytes at a time past text without a trigger (most prose).
        while i + 8 <= end {
            let mut word = [0u8; 8];
            word.copy_from_slice(&text[i..i + 8]);
            if may_trigger(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        if i >= end {
            break;
        }
        if !TRIGGER[text[i] as usize] {
            i += 1;
            continue;
        }
        if text[i].is_ascii_digit() && inside_escape(text, span.start, i) {
            // The hex digits of a `\uXXXX` escape.
            i += 1;
            continue;
        }
        let hit = match text[i] {
            b'@' => email(text, &span, i),
            b':' => ipv6(text, &span, i),
            // `+1 415...`, `(555) 123...`: the number starts at the sign.
            _ if i > span.start
                && matches!(text[i - 1], b'+' | b'(')
                && at_a_boundary(text, span.start, i - 1) =>
            {
                number(text, &span, i - 1)
            }
            _ if at_a_boundary(text, span.start, i) => number(text, &span, i),
            // Digits after two capitals: an IBAN's check digits.
            b'0'..=b'9' => iban(text, &span, i),
            _ => None,
        };
        match hit {
            Some(hit) => {
                // A match found from an `@` or `:` may start before earlier finds' ends.
                if found.last().is_none_or(|last| last.range.end <= hit.range.start) {
                    i = hit.range.end;
                    found.push(hit);
                } else {
                    i += 1;
                }
            }
            None if text[i].is_ascii_digit() => {
                // The rest of this digit run cannot start a match.
                while i < end && text[i].is_ascii_digit() {
                    i += 1;
                }
            }
            None => i += 1,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether a match may start at `at`: after a non-word character, at the span's start, or
/// after a JSON escape (`\n`).
fn at_a_boundary(text: &[u8], start: usize, at: usize) -> bool {
    at == start || !is_word(text[at - 1]) || after_escape(text, start, at)
}

/// Whether an escape sequence (`\n`, `\u00a0`) ends just before `at`.
fn after_escape(text: &[u8], start: usize, at: usize) -> bool {
    let escaping = |k: usize| {
        text[k] == b'\\' && text[start..k].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    };
    (at >= start + 2 && escaping(at - 2) && text[at - 1] != b'u')
        || (at >= start + 6 && escaping(at - 6) && text[at - 5] == b'u')
}

/// Whether a match may end at `at`.
fn ends_at_a_boundary(text: &[u8], end: usize, at: usize) -> bool {
    at == end || !is_word(text[at])
}

fn email(text: &[u8], span: &Range<usize>, at: usize) -> Option<PiiFound> {
    let local = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut start = at;
    while start > span.start && at - start < 64 && local(text[start - 1]) {
        start -= 1;
    }
    // `\nname@...`, `\u201cname@...`: the escape is not part of the address.
    while start < at && (inside_escape(text, span.start, start) || text[start] == b'.') {
        start += 1;
    }
    if start == at {
        return None;
    }
    let domain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    let mut end = at + 1;
    while end < span.end && end - at <= 253 && domain(text[end]) {
        end += 1;
    }
    // A sentence's full stop is not part of the address.
    while end > at + 1 && matches!(text[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let host = &text[at + 1..end];
    let dot = host.iter().rposition(|&b| b == b'.')?;
    let tld = &host[dot + 1..];
    let valid = dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && !host.contains(&b'@');
    valid.then_some(PiiFound {
        range: start..end,
        kind: "email",
    })
}

fn ipv6(text: &[u8], span: &Range<usize>, at: usize) -> Option<PiiFound> {
    let part = |b: u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
    let mut start = at;
    while start > span.start && at - start < 45 && part(text[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < span.end && end - start < 45 && part(text[end]) {
        end += 1;
    }
    let token = &text[start..end];
    let colons = token.iter().filter(|&&b| b == b':').count();
    if colons < 2 || !token.iter().any(u8::is_ascii_digit) {
        return None;
    }
    if !at_a_boundary(text, span.start, start) || !ends_at_a_boundary(text, span.end, end) {
        return None;
    }
    let parsed = std::str::from_utf8(token).ok()?.parse::<Ipv6Addr>().ok()?;
    (!parsed.is_unspecified()).then_some(PiiFound {
        range: start..end,
        kind: "ip_address",
    })
}

/// A number-like token: digits and single separators between them, as written.
struct Token {
    range: Range<usize>,
    digits: [u8; 40],
    count: usize,
    /// The lengths of its digit groups (at most 8 kept).
    groups: [u8; 8],
    group_count: usize,
    separators: u8,
    dots: u8,
    dashes: u8,
    spaces: u8,
    parens: bool,
    plus: bool,
}

fn number(text: &[u8], span: &Range<usize>, at: usize) -> Option<PiiFound> {
    let token = read_token(text, span, at)?;
    let kind = if is_ipv4(text, &token) {
        "ip_address"
    } else if is_ssn(&token) {
        "ssn"
    } else if is_card(&token) {
        "card"
    } else if is_phone(&token) {
        "phone"
    } else {
        return None;
    };
    Some(PiiFound {
        range: token.range,
        kind,
    })
}

fn read_token(text: &[u8], span: &Range<usize>, at: usize) -> Option<Token> {
    let mut t = Token {
        range: at..at,
        digits: [0; 40],
        count: 0,
        groups: [0; 8],
        group_count: 0,
        separators: 0,
        dots: 0,
        dashes: 0,
        spaces: 0,
        parens: false,
        plus: false,
    };
    let mut i = at;
    match text[i] {
        b'+' => {
            t.plus = true;
            i += 1;
        }
        b'(' => {
            t.parens = true;
            i += 1;
        }
        _ => {}
    }
    let mut group = 0u8;
    let mut end = i;
    // The longest match is a card number of 19 digits in groups: 25 bytes.
    while i < span.end && i - at < 26 {
        let b = text[i];
        if b.is_ascii_digit() {
            if t.count < t.digits.len() {
                t.digits[t.count] = b;
            }
            t.count += 1;
            group += 1;
            i += 1;
            end = i;
            continue;
        }
        // A separator counts only between digits.
        let next_is_digit = |k: usize| k < span.end && text[k].is_ascii_digit();
        let (skip, kind) = match b {
            b')' if t.parens && t.group_count == 0 && next_is_digit(i + 1) => (1, b'-'),
            b')' if t.parens
                && t.group_count == 0
                && text.get(i + 1) == Some(&b' ')
                && next_is_digit(i + 2) =>
            {
                (2, b' ')
            }
            b' ' | b'-' | b'.' if next_is_digit(i + 1) && group > 0 => (1, b),
            _ => break,
        };
        // Only an E.164 number or one with an area code in parentheses mixes separators; a
        // token ends where a second kind begins (so text of digit groups costs little).
        let seen = match kind {
            b'.' => t.dots,
            b'-' => t.dashes,
            _ => t.spaces,
        };
        if seen == 0 && t.separators > 0 && !t.plus && !t.parens {
            break;
        }
        if t.group_count < t.groups.len() {
            t.groups[t.group_count] = group;
        }
        t.group_count += 1;
        group = 0;
        t.separators += 1;
        match kind {
            b'.' => t.dots += 1,
            b'-' => t.dashes += 1,
            _ => t.spaces += 1,
        }
        i += skip;
    }
    if t.count == 0 {
        return None;
    }
    if t.group_count < t.groups.len() {
        t.groups[t.group_count] = group;
    }
    t.group_count += 1;
    t.range = at..end;
    // `12345abc`, `1.5x`: part of a word, not a number.
    ends_at_a_boundary(text, span.end, end).then_some(t)
}

fn is_ipv4(text: &[u8], t: &Token) -> bool {
    if t.plus || t.parens || t.dots != 3 || t.separators != 3 || t.group_count != 4 {
        return false;
    }
    let s = &text[t.range.clone()];
    s.split(|&b| b == b'.').all(|part| {
        !part.is_empty()
            && part.len() <= 3
            && std::str::from_utf8(part)
                .ok()
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|n| n <= 255)
    })
}

fn digits(t: &Token) -> &[u8] {
    &t.digits[..t.count.min(t.digits.len())]
}

fn is_ssn(t: &Token) -> bool {
    if t.plus || t.parens || t.dashes != 2 || t.separators != 2 || t.groups[..3] != [3, 2, 4] {
        return false;
    }
    let d = digits(t);
    let area = &d[..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..9] != b"0000"
}

fn is_card(t: &Token) -> bool {
    if t.plus || t.parens || t.dots > 0 || !(13..=19).contains(&t.count) {
        return false;
    }
    let d = digits(t);
    let issuer = matches!(
        (d[0], d[1]),
        (b'4', _)
            | (b'5', b'1'..=b'5')
            | (b'2', b'2'..=b'7')
            | (b'3', b'0' | b'4' | b'6' | b'7' | b'8')
            | (b'6', b'0' | b'2' | b'4' | b'5')
    );
    issuer && luhn(d)
}

/// The Luhn checksum of a card number.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let n = u32::from(c - b'0');
            match i % 2 {
                1 if n * 2 > 9 => n * 2 - 9,
                1 => n * 2,
                _ => n,
            }
        })
        .sum();
    sum % 10 == 0
}

fn is_phone(t: &Token) -> bool {
    if t.plus {
        return (8..=15).contains(&t.count) && t.group_count <= 6;
    }
    if !(10..=11).contains(&t.count) || (t.separators == 0 && !t.parens) || t.group_count > 4 {
        return false;
    }
    // One kind of separator (parentheses aside), a last group of at least four digits
    // (`555-123-4567`, `020 7946 0958`), a first group of at most five: not a date or a version.
    let kinds = usize::from(t.dots > 0) + usize::from(t.dashes > 0) + usize::from(t.spaces > 0);
    let groups = &t.groups[..t.group_count.min(t.groups.len())];
    let last = groups.last().copied().unwrap_or(0);
    (kinds <= 1 || t.parens) && last >= 4 && groups[0] <= 5 && groups.iter().all(|&g| g >= 1)
}

/// An IBAN whose digits start at `at` (its two letters are just before): `GB82 WEST 1234 ...`.
fn iban(text: &[u8], span: &Range<usize>, at: usize) -> Option<PiiFound> {
    if at < span.start + 2 || !text[at - 2].is_ascii_uppercase() || !text[at - 1].is_ascii_uppercase() {
        return None;
    }
    let start = at - 2;
    if !at_a_boundary(text, span.start, start) {
        return None;
    }
    let mut chars = [0u8; 34];
    let mut ends = [0usize; 34];
    let mut n = 0;
    let mut i = start;
    while i < span.end && n < 34 {
        let b = text[i];
        if b.is_ascii_digit() || b.is_ascii_uppercase() {
            chars[n] = b;
            n += 1;
            i += 1;
            ends[n - 1] = i;
        } else if b == b' ' && i + 1 < span.end && text[i + 1].is_ascii_alphanumeric() {
            i += 1;
        } else {
            break;
        }
    }
    // The longest prefix that passes the check and ends at a boundary.
    (15..=n).rev().find_map(|len| {
        let end = ends[len - 1];
        let boundary = end == span.end || !is_word(text[end]);
        (boundary && iban_checksum(&chars[..len])).then_some(PiiFound {
            range: start..end,
            kind: "iban",
        })
    })
}

/// ISO 13616: the IBAN with its first four characters moved to the end, letters as 10..35,
/// is 1 modulo 97.
fn iban_checksum(chars: &[u8]) -> bool {
    if !chars[2].is_ascii_digit() || !chars[3].is_ascii_digit() {
        return false;
    }
    let mut rest = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => u32::from(c - b'A') + 10,
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

/// The value of a find as it is correlated by a keyed tag: e-mail addresses in lower case,
/// numbers by their digits (so `+1 555-123-4567` and `+15551234567` agree).
pub(crate) fn normalized(kind: &str, value: &str) -> String {
    match kind {
        "email" => value.to_ascii_lowercase(),
        "phone" | "card" | "ssn" => value.chars().filter(char::is_ascii_digit).collect(),
        "iban" => value.chars().filter(|c| !c.is_whitespace()).collect(),
        _ => value.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        find_pii(text)
            .into_iter()
            .map(|f| (f.kind, text[f.range].to_string()))
            .collect()
    }

    fn one(s: &str) -> Vec<(&'static str, String)> {
        kinds(&format!(r#"{{"content":"{s}"}}"#))
    }

    #[test]
    fn true_positives() {
        let cases = [
            (
                "write to jane.doe+x@mail.example.co.uk.",
                "email",
                "jane.doe+x@mail.example.co.uk",
            ),
            ("call +14155552671 now", "phone", "+14155552671"),
            ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
            ("(555) 123-4567", "phone", "(555) 123-4567"),
            ("555-123-4567", "phone", "555-123-4567"),
            ("555.123.4567", "phone", "555.123.4567"),
            ("020 7946 0958", "phone", "020 7946 0958"),
            ("card 4111 1111 1111 1111 exp", "card", "4111 1111 1111 1111"),
            ("card 4111-1111-1111-1111", "card", "4111-1111-1111-1111"),
            ("amex 378282246310005", "card", "378282246310005"),
            (
                "iban GB82 WEST 1234 5698 7654 32 ok",
                "iban",
                "GB82 WEST 1234 5698 7654 32",
            ),
            ("iban DE89370400440532013000", "iban", "DE89370400440532013000"),
            ("from 192.168.1.20 at", "ip_address", "192.168.1.20"),
            (
                "from 2001:db8::8a2e:370:7334 at",
                "ip_address",
                "2001:db8::8a2e:370:7334",
            ),
            ("ssn 123-45-6789", "ssn", "123-45-6789"),
        ];
        for (text, kind, value) in cases {
            assert_eq!(one(text), [(kind, value.to_string())], "{text}");
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        for text in [
            "order 4111111111111112",         // fails Luhn
            "order 1234567890123456",         // not an issuer's, fails Luhn
            "id 9111111111111111",            // passes Luhn, no issuer starts with 9
            "on 2024-01-15 10:30",            // a date and a time
            "version 1.2.3.4567",             // four parts, one above 255
            "at 256.1.1.1",                   // above 255
            "ssn 666-12-3456 or 123-00-4567", // invalid area, invalid group
            "user@localhost",                 // no domain
            "@@@@ a@b @ x.y",
            "std::io::Result and a::b",    // code, no digits
            "12:30:45",                    // a time
            "GB82 WEST 1234 5698 7654 33", // fails mod 97
            "sha 4111111111111111abc",     // part of a word
            "5551234567",                  // ten digits, no grouping: could be anything
            "\\u0040\\u00e9 and 3.14159",
            "price 1,234,567.89",
        ] {
            assert_eq!(one(text), [], "{text}");
        }
    }

    #[test]
    fn only_string_values_are_searched() {
        let text = r#"{"max_tokens":4111111111111111,"content":"mail a@b.io","n":192.168}"#;
        assert_eq!(kinds(text), [("email", "a@b.io".to_string())]);
        // After a JSON escape (a line break), at the start of a line.
        assert_eq!(
            one(r"first\njane@example.com\n+14155552671"),
            [
                ("email", "jane@example.com".into()),
                ("phone", "+14155552671".into())
            ]
        );
    }

    #[test]
    fn escapes_are_never_cut_into() {
        // Curly quotes as `\u201c`, an accent as `\u00e9`, a space as `\u3000` before a
        // number that passes the Luhn check, a no-break space before a phone number.
        let text = r#"{"c":"\u201cjane@example.com\u201d jos\u00e9.garcia@example.com \u30000312345675 \u00a0555-123-4567"}"#;
        let found = kinds(text);
        assert_eq!(
            found,
            [
                ("email", "jane@example.com".to_string()),
                ("email", "garcia@example.com".to_string()),
                ("phone", "555-123-4567".to_string()),
            ]
        );
    }

    #[test]
    fn pathological_text_costs_bounded_work() {
        // Each is a megabyte; the scan touches each byte a bounded number of times, which
        // the instruction count of the bench measures; here: it ends and finds nothing.
        for filler in ["1", "@", "a@", "1.", ":", "1:", "+1 ", "AB12 "] {
            let text = format!(r#"{{"c":"{}"}}"#, filler.repeat((1 << 20) / filler.len()));
            let found = find_pii(&text);
            assert!(found.len() < 1 << 17, "{filler}: {}", found.len());
        }
    }

    #[test]
    fn the_word_test_never_misses_a_trigger() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let trigger = TRIGGER[b as usize];
                assert!(
                    !trigger || may_trigger(u64::from_le_bytes(word)),
                    "byte {b:#x} at {at}"
                );
            }
        }
        assert!(!may_trigger(u64::from_le_bytes(*b"lorem ip")));
    }

    #[test]
    fn normalized_values_correlate() {
        assert_eq!(
            normalized("phone", "+1 555-123-4567"),
            normalized("phone", "+15551234567")
        );
        assert_eq!(normalized("email", "Jane@Example.com"), "jane@example.com");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Whatever the text, replacing what is found keeps a JSON document valid and equal
        /// outside the finds.
        #[test]
        fn redaction_keeps_json_valid(pieces in prop::collection::vec(prop::sample::select(vec![
            "a@b.io", "\\u201c", "\\u00e9", "\\n", "\\\"", "\\\\", "+1 415-555-2671", "4111 1111 1111 1111",
            "GB82 WEST 1234 5698 7654 32", "10.0.0.1", "::1", "fe80::1", "123-45-6789", "(555) 123-4567",
            " ", ".", "-", "x", "9", "@", ":", "+", "(",
        ]), 0..60)) {
            let doc = format!(r#"{{"content":"{}","n":12345}}"#, pieces.concat());
            prop_assume!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
            let edits: Vec<crate::privacy::Edit> = find_pii(&doc)
                .into_iter()
                .map(|f| crate::privacy::Edit::new(f.range, f.kind))
                .collect();
            let mut checked = edits.clone();
            prop_assert!(crate::privacy::check_edits(&doc, &mut checked).is_ok());
            let out = crate::privacy::apply_edits(doc.as_bytes(), &edits, &mut BTreeMap::new());
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out);
            prop_assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&out));
        }
    }
}
