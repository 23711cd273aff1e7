//! What a finished scan found, and reading its scalars.

use crate::capture::LoggedMessage;

/// What a finished scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// The captured value, if the path was found.
    pub(crate) capture: Option<LoggedMessage>,
    /// Counted values by slot: (slot, values, bytes).
    pub(crate) counts: Vec<(u8, u64, u64)>,
    /// Scalars in the order they were found, by slot.
    pub(crate) scalars: Vec<(u8, u32, u32)>,
    /// The bytes of the scalars, one after another (`scalars` holds their ranges).
    pub(crate) scalar_data: Vec<u8>,
    /// Why the input is not JSON, if it is not.
    pub(crate) error: Option<String>,
    /// Whether the top-level value was read to its end.
    pub(crate) complete: bool,
    /// The captured path appeared more than once; the capture holds the last.
    pub(crate) duplicate_capture: bool,
    /// Slots (modulo 64) with a value found but dropped for its size.
    pub(crate) dropped_scalars: u64,
    /// Bytes fed.
    pub(crate) bytes: u64,
}

impl ScanResult {
    /// Whether a value was found at `slot`'s path but dropped for its size (over 4 KiB, or
    /// past the scalars' budget): there, though [`scalar`](Self::scalar) has none.
    pub fn scalar_dropped(&self, slot: u8) -> bool {
        self.dropped_scalars & (1u64 << (slot % 64)) != 0
    }

    /// The captured value (or values, as one object), if any was found.
    pub fn capture(&self) -> Option<&LoggedMessage> {
        self.capture.as_ref()
    }

    /// Takes the captured value out.
    pub fn take_capture(&mut self) -> Option<LoggedMessage> {
        self.capture.take()
    }

    /// Why the input is not JSON, if it is not.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the top-level value was read to its end.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether a captured path appeared more than once (the last is kept).
    pub fn has_duplicate_capture(&self) -> bool {
        self.duplicate_capture
    }

    /// How many values were found at the [`Action::Count`](super::Action::Count) or [`Action::Measure`](super::Action::Measure) path `slot`,
    /// and (for `Measure`) their raw size in bytes.
    pub fn count(&self, slot: u8) -> (u64, u64) {
        self.counts
            .iter()
            .find(|(s, _, _)| *s == slot)
            .map_or((0, 0), |&(_, n, b)| (n, b))
    }

    /// The raw value of the scalar in `slot` (the last, where the key repeated).
    pub fn scalar(&self, slot: u8) -> Option<&[u8]> {
        self.scalars
            .iter()
            .find(|(s, _, _)| *s == slot)
            .map(|&(_, start, end)| &self.scalar_data[start as usize..end as usize])
    }

    /// Why the body could not be read whole, if it could not: not JSON, empty, or cut short.
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        match (self.complete, self.bytes) {
            (true, _) => None,
            (false, 0) => Some("the body is empty".to_string()),
            (false, n) => Some(format!("the body ended inside the JSON value after {n} bytes")),
        }
    }

    /// Every scalar in `slot`, in order.
    pub fn scalars_in(&self, slot: u8) -> impl Iterator<Item = &[u8]> {
        self.scalars
            .iter()
            .filter(move |(s, _, _)| *s == slot)
            .map(|&(_, start, end)| &self.scalar_data[start as usize..end as usize])
    }
}

/// A JSON string scalar's value.
pub fn scalar_string(raw: &[u8]) -> Option<String> {
    // The usual id or model: no escape, so the text between the quotes is the value (serde
    // reads the rest, and refuses what it refuses).
    if let [b'"', inner @ .., b'"'] = raw {
        if inner.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
            return std::str::from_utf8(inner).ok().map(str::to_string);
        }
    }
    serde_json::from_slice::<String>(raw).ok()
}

/// A JSON boolean scalar's value.
pub fn scalar_bool(raw: &[u8]) -> Option<bool> {
    match raw {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::scalar_string;
    use proptest::prelude::*;

    proptest! {
        /// The quick read of an unescaped string says what serde says, for any bytes.
        #[test]
        fn a_scalar_reads_as_serde_reads_it(
            raw in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..24),
                "[ -~é\t]{0,24}".prop_map(String::into_bytes),
            ],
            quoted in any::<bool>(),
        ) {
            let raw = if quoted { [&b"\""[..], &raw, b"\""].concat() } else { raw };
            prop_assert_eq!(scalar_string(&raw), serde_json::from_slice::<String>(&raw).ok());
        }
    }

    #[test]
    fn escapes_and_control_characters_go_to_serde() {
        for raw in [
            &br#""a\"b""#[..],
            br#""caf\u00e9""#,
            b"\"tab\there\"",
            b"\"a\"b\"",
            b"\"\xff\"",
            b"\"plain\"",
        ] {
            assert_eq!(
                scalar_string(raw),
                serde_json::from_slice::<String>(raw).ok(),
                "{raw:?}"
            );
        }
    }
}
