//! Decoding compressed bodies (`Content-Encoding: gzip, deflate, br, zstd`) for the tap only:
//! the traffic passes as it came; the readers see the decoded bytes.
//!
//! Compressed input is fed in small slices and the output drained after each, so the decoded
//! bytes held at once stay small whatever the compression ratio; the readers then keep at most
//! their caps. Decoding stops after [`LogConfig::decoded_bytes`](crate::LogConfig::decoded_bytes)
//! decoded bytes, so a decompression bomb costs bounded time too. The decoders' own windows add
//! at most 32 KiB (gzip, deflate), 16 MiB (brotli) or 8 MiB (zstd, the HTTP limit) per body.

use bytes::Bytes;
use http::header::CONTENT_ENCODING;
use http::HeaderMap;

/// The body's encoding, from its headers: `Ok(None)` for none, `Err` for one not decoded here.
pub(crate) fn encoding(headers: &HeaderMap) -> Result<Option<Codec>, String> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("?").trim();
    if value.is_empty() || value.eq_ignore_ascii_case("identity") {
        return Ok(None);
    }
    let codec = match value.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Codec::Gzip,
        "deflate" => Codec::Deflate,
        "br" => Codec::Brotli,
        "zstd" => Codec::Zstd,
        _ => return Err(format!("the body is compressed ({value}) and was not decoded")),
    };
    if cfg!(feature = "decompress") {
        Ok(Some(codec))
    } else {
        Err(format!(
            "the body is compressed ({value}) and was not decoded (the decompress feature is off)"
        ))
    }
}

/// A content coding this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Deflate => "deflate",
            Codec::Brotli => "br",
            Codec::Zstd => "zstd",
        }
    }
}

/// Compressed bytes handed to a gzip or deflate decoder at a time: deflate expands at most about
/// 1032 to 1, so the output of one slice stays under 300 KiB. Brotli and zstd take whole frames:
/// they hand their output over in 16 KiB pieces as they go, whatever their ratio.
#[cfg(feature = "decompress")]
const DEFLATE_INPUT_SLICE: usize = 256;

/// Decodes one body incrementally, within a bound on decoded bytes.
pub(crate) struct Decoder {
    codec: Codec,
    #[cfg(feature = "decompress")]
    state: imp::State,
    #[cfg_attr(not(feature = "decompress"), allow(dead_code))]
    decoded: u64,
    #[cfg_attr(not(feature = "decompress"), allow(dead_code))]
    limit: u64,
    error: Option<String>,
    stopped: bool,
}

impl Decoder {
    pub(crate) fn new(codec: Codec, limit: u64) -> Self {
        Decoder {
            codec,
            #[cfg(feature = "decompress")]
            state: imp::State::new(codec),
            decoded: 0,
            limit,
            error: None,
            stopped: limit == 0,
        }
    }

    /// Decodes the next compressed frame, handing decoded bytes to `out`.
    pub(crate) fn push(&mut self, frame: &[u8], out: &mut dyn FnMut(&Bytes)) {
        #[cfg(feature = "decompress")]
        let slice_len = match self.codec {
            Codec::Gzip | Codec::Deflate => DEFLATE_INPUT_SLICE,
            Codec::Brotli | Codec::Zstd => frame.len().max(1),
        };
        for slice in frame.chunks(slice_len) {
            if self.stopped {
                return;
            }
            let result = {
                let (state, mut emit) = self.split(out);
                guarded(|| state.push(slice, &mut emit))
            };
            self.settle(result);
        }
        #[cfg(not(feature = "decompress"))]
        let _ = (frame, out);
    }

    /// The body ended (or stopped, when not `ended`): decodes what is left. Returns whether the
    /// whole body was decoded, and why not.
    pub(crate) fn finish(&mut self, ended: bool, out: &mut dyn FnMut(&Bytes)) -> (bool, Option<String>) {
        #[cfg(feature = "decompress")]
        if ended && !self.stopped {
            let result = {
                let (state, mut emit) = self.split(out);
                guarded(|| state.finish(&mut emit))
            };
            self.settle(result);
        }
        #[cfg(not(feature = "decompress"))]
        let _ = (ended, out);
        let error = self
            .error
            .take()
            .map(|e| format!("the {} body could not be decoded: {e}", self.codec.name()));
        (!self.stopped && error.is_none(), error)
    }

    /// The decoder's state, and the sink for its output: counts decoded bytes against the limit
    /// and says when to stop.
    #[cfg(feature = "decompress")]
    fn split<'a>(&'a mut self, out: &'a mut dyn FnMut(&Bytes)) -> (&'a mut imp::State, Emit<'a>) {
        let emit = Emit {
            decoded: &mut self.decoded,
            limit: self.limit,
            hit_limit: false,
            out,
        };
        (&mut self.state, emit)
    }

    #[cfg(feature = "decompress")]
    fn settle(&mut self, result: std::io::Result<bool>) {
        match result {
            Ok(true) => {}
            Ok(false) => {
                self.stopped = true;
                self.error.get_or_insert(format!(
                    "decoding stopped at {} decoded bytes (LogConfig::decoded_bytes); the rest was not read",
                    self.limit
                ));
            }
            Err(e) => {
                self.stopped = true;
                self.error.get_or_insert(e.to_string());
            }
        }
    }
}

/// Where decoded bytes go: to the reader, up to the limit.
#[cfg(feature = "decompress")]
struct Emit<'a> {
    decoded: &'a mut u64,
    limit: u64,
    hit_limit: bool,
    out: &'a mut dyn FnMut(&Bytes),
}

#[cfg(feature = "decompress")]
impl Emit<'_> {
    /// Hands on decoded bytes; `false` once the limit is reached (decoding must stop).
    fn emit(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() || self.hit_limit {
            return !self.hit_limit;
        }
        let room = self.limit - *self.decoded;
        let take = (bytes.len() as u64).min(room) as usize;
        *self.decoded += take as u64;
        if take > 0 {
            (self.out)(&Bytes::copy_from_slice(&bytes[..take]));
        }
        self.hit_limit = take < bytes.len();
        !self.hit_limit
    }
}

/// Runs a decoder step, turning a panic in the decoder (third-party code fed untrusted bytes)
/// into an error: a body the decoder chokes on must not take the request down.
#[cfg(feature = "decompress")]
fn guarded(step: impl FnOnce() -> std::io::Result<bool>) -> std::io::Result<bool> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step))
        .unwrap_or_else(|_| Err(std::io::Error::other("the decoder failed on this input")))
}

#[cfg(feature = "decompress")]
mod imp {
    use std::io::{self, Write};

    use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
    use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
    use ruzstd::decoding::FrameDecoder;

    use super::{Codec, Emit};

    /// The most memory a zstd frame may ask for its window: HTTP's limit (RFC 9659).
    const ZSTD_WINDOW: u64 = 8 * 1024 * 1024;
    /// Decoded bytes handed on at a time by brotli and zstd.
    const OUT_PIECE: usize = 16 * 1024;

    pub(super) enum State {
        Gzip(MultiGzDecoder<Vec<u8>>),
        /// Deflate: zlib-wrapped as HTTP says, or raw as some servers send; told by the first
        /// two bytes.
        DeflateUnknown(Vec<u8>),
        Zlib(ZlibDecoder<Vec<u8>>),
        RawDeflate(DeflateDecoder<Vec<u8>>),
        Brotli(Box<Brotli>),
        Zstd(Box<Zstd>),
    }

    impl State {
        pub(super) fn new(codec: Codec) -> Self {
            match codec {
                Codec::Gzip => State::Gzip(MultiGzDecoder::new(Vec::new())),
                Codec::Deflate => State::DeflateUnknown(Vec::new()),
                Codec::Brotli => State::Brotli(Box::new(Brotli::new())),
                Codec::Zstd => State::Zstd(Box::new(Zstd::new())),
            }
        }

        /// Decodes `input`; `Ok(false)` when the output limit stopped it.
        pub(super) fn push(&mut self, input: &[u8], out: &mut Emit<'_>) -> io::Result<bool> {
            match self {
                State::Gzip(d) => {
                    d.write_all(input)?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::DeflateUnknown(head) => {
                    head.extend_from_slice(input);
                    if head.len() < 2 {
                        return Ok(true);
                    }
                    let head = std::mem::take(head);
                    let zlib =
                        head[0] & 0x0F == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
                    *self = if zlib {
                        State::Zlib(ZlibDecoder::new(Vec::new()))
                    } else {
                        State::RawDeflate(DeflateDecoder::new(Vec::new()))
                    };
                    self.push(&head, out)
                }
                State::Zlib(d) => {
                    d.write_all(input)?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::RawDeflate(d) => {
                    d.write_all(input)?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::Brotli(d) => d.push(input, out, false),
                State::Zstd(d) => d.push(input, out),
            }
        }

        pub(super) fn finish(&mut self, out: &mut Emit<'_>) -> io::Result<bool> {
            match self {
                State::Gzip(d) => {
                    d.try_finish()?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::DeflateUnknown(head) if head.is_empty() => Ok(true),
                State::DeflateUnknown(_) => Err(io::Error::other("the body ended inside its header")),
                State::Zlib(d) => {
                    d.try_finish()?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::RawDeflate(d) => {
                    d.try_finish()?;
                    Ok(out.emit(&std::mem::take(d.get_mut())))
                }
                State::Brotli(d) => d.push(&[], out, true),
                State::Zstd(d) => d.finish(out),
            }
        }
    }

    /// Brotli with the decoder's streaming interface, output taken in pieces.
    pub(super) struct Brotli {
        state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
        done: bool,
        /// Kept, so a frame does not pay for a fresh buffer.
        buf: Box<[u8; OUT_PIECE]>,
    }

    impl Brotli {
        fn new() -> Self {
            let mut state = BrotliState::new(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            );
            // RFC 7932 windows (at most 16 MiB), not the large-window extension (up to 1 GiB).
            state.large_window = false;
            Brotli {
                state,
                done: false,
                buf: Box::new([0; OUT_PIECE]),
            }
        }

        fn push(&mut self, input: &[u8], out: &mut Emit<'_>, at_end: bool) -> io::Result<bool> {
            let buf = &mut *self.buf;
            let (mut available_in, mut input_offset) = (input.len(), 0);
            loop {
                if self.done {
                    if available_in > 0 {
                        return Err(io::Error::other("data after the end of the brotli stream"));
                    }
                    return Ok(true);
                }
                let (mut available_out, mut output_offset, mut total_out) = (buf.len(), 0, 0);
                let result = BrotliDecompressStream(
                    &mut available_in,
                    &mut input_offset,
                    input,
                    &mut available_out,
                    &mut output_offset,
                    buf,
                    &mut total_out,
                    &mut self.state,
                );
                if !out.emit(&buf[..output_offset]) {
                    return Ok(false);
                }
                match result {
                    BrotliResult::ResultSuccess => self.done = true,
                    BrotliResult::NeedsMoreOutput => {}
                    BrotliResult::NeedsMoreInput if at_end => {
                        return Err(io::Error::other("the body ended inside the brotli stream"))
                    }
                    BrotliResult::NeedsMoreInput => return Ok(true),
                    BrotliResult::ResultFailure => return Err(io::Error::other("invalid brotli data")),
                }
            }
        }
    }

    /// zstd with ruzstd's push interface: compressed bytes are held until a whole block is in
    /// (a block is at most 128 KiB).
    pub(super) struct Zstd {
        decoder: FrameDecoder,
        pending: Vec<u8>,
        started: bool,
        /// How much of `pending` to offer the decoder at once. The decoder decodes every block
        /// it is offered before handing anything out, and a block of a few bytes can stand for
        /// 128 KiB, so it is offered a little at a time, more only when that is not a block.
        offer: usize,
        /// Kept, so a frame does not pay for a fresh buffer.
        buf: Box<[u8; OUT_PIECE]>,
    }

    const FIRST_OFFER: usize = 64;

    /// A zstd block's largest size plus its header and a frame header.
    const MAX_PENDING: usize = 128 * 1024 + 3 + 18 + 4;

    impl Zstd {
        fn new() -> Self {
            let mut decoder = FrameDecoder::new();
            decoder.set_max_window_size(ZSTD_WINDOW);
            Zstd {
                decoder,
                pending: Vec::new(),
                started: false,
                offer: FIRST_OFFER,
                buf: Box::new([0; OUT_PIECE]),
            }
        }

        fn push(&mut self, input: &[u8], out: &mut Emit<'_>) -> io::Result<bool> {
            self.pending.extend_from_slice(input);
            if !self.run(out, false)? {
                return Ok(false);
            }
            if self.pending.len() > MAX_PENDING {
                return Err(io::Error::other("a zstd block is larger than the format allows"));
            }
            Ok(true)
        }

        /// Decodes what can be; before the end, waits for at least 4 bytes, as a frame's
        /// 4-byte checksum must not be offered in part (the decoder reports it read whole).
        fn run(&mut self, out: &mut Emit<'_>, at_end: bool) -> io::Result<bool> {
            let buf = &mut *self.buf;
            loop {
                if self.started && self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                    // A frame ended; another may follow (concatenated frames are one stream).
                    if self.pending.is_empty() {
                        return Ok(true);
                    }
                    self.decoder = FrameDecoder::new();
                    self.decoder.set_max_window_size(ZSTD_WINDOW);
                    self.started = false;
                }
                let needed = if self.started { 4 } else { 18 };
                if !at_end && self.pending.len() < needed {
                    // Not enough for a frame header or a checksum yet: wait for more.
                    return Ok(true);
                }
                let offered = self.offer.min(self.pending.len());
                let (read, written) = self
                    .decoder
                    .decode_from_to(&self.pending[..offered], buf)
                    .map_err(io::Error::other)?;
                self.started = true;
                // The decoder can claim a checksum it was offered only part of; what it could
                // not have read is not progress.
                let read = read.min(self.pending.len());
                self.pending.drain(..read);
                if !out.emit(&buf[..written]) {
                    return Ok(false);
                }
                // Everything the offer decoded leaves the decoder before more is offered, so it
                // holds at most its window and one offer's blocks (a few MiB), whatever the
                // blocks expand to.
                let mut last = written;
                while last == buf.len() {
                    let (_, more) = self.decoder.decode_from_to(&[], buf).map_err(io::Error::other)?;
                    if !out.emit(&buf[..more]) {
                        return Ok(false);
                    }
                    last = more;
                }
                if read == 0 && written == 0 {
                    if offered < self.pending.len() {
                        self.offer *= 2;
                        continue;
                    }
                    return Ok(true);
                }
                if read > 0 {
                    self.offer = FIRST_OFFER;
                }
            }
        }

        /// Decoded bytes waiting in the decoder.
        #[cfg(test)]
        pub(super) fn held(&self) -> usize {
            self.decoder.can_collect()
        }

        fn finish(&mut self, out: &mut Emit<'_>) -> io::Result<bool> {
            if !self.run(out, true)? {
                return Ok(false);
            }
            if !self.pending.is_empty() || (self.started && !self.decoder.is_finished()) {
                return Err(io::Error::other("the body ended inside a zstd frame"));
            }
            Ok(true)
        }
    }
}

#[cfg(all(test, feature = "decompress"))]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode(codec: Codec, body: &[u8], split: usize, limit: u64) -> (Vec<u8>, bool, Option<String>) {
        let mut d = Decoder::new(codec, limit);
        let mut out = Vec::new();
        for part in body.chunks(split.max(1)) {
            d.push(part, &mut |b| out.extend_from_slice(b));
        }
        let (complete, error) = d.finish(true, &mut |b| out.extend_from_slice(b));
        (out, complete, error)
    }

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_both_deflates_decode_in_any_split() {
        let text = br#"{"model":"m","messages":[{"role":"user","content":"hello hello hello"}]}"#.repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&text).unwrap();
        let raw = r.finish().unwrap();
        for (codec, body) in [
            (Codec::Gzip, gzip(&text)),
            (Codec::Deflate, zlib),
            (Codec::Deflate, raw),
        ] {
            for split in [1, 2, 7, 100, body.len()] {
                let (out, complete, error) = decode(codec, &body, split, u64::MAX);
                assert_eq!(out, text, "{codec:?} split {split}");
                assert!(complete && error.is_none(), "{codec:?}: {error:?}");
            }
        }
    }

    #[test]
    fn brotli_and_zstd_decode_in_any_split() {
        let text = br#"{"choices":[{"index":0,"message":{"content":"caf\u00e9 and more text"}}]}"#.repeat(40);
        let mut b = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        b.write_all(&text).unwrap();
        let br = b.into_inner();
        let mut zst =
            ruzstd::encoding::compress_to_vec(&text[..], ruzstd::encoding::CompressionLevel::Fastest);
        // Two frames in a row are one body.
        zst.extend(ruzstd::encoding::compress_to_vec(
            &b"tail"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        let mut both = text.clone();
        both.extend_from_slice(b"tail");
        for (codec, body, want) in [(Codec::Brotli, br, &text), (Codec::Zstd, zst, &both)] {
            for split in 1..=9 {
                let (out, complete, error) = decode(codec, &body, split, u64::MAX);
                assert_eq!(&out, want, "{codec:?} split {split}");
                assert!(complete && error.is_none(), "{codec:?} split {split}: {error:?}");
            }
            let (_, complete, error) = decode(codec, &body[..body.len() - 3], 5, u64::MAX);
            assert!(!complete && error.is_some(), "{codec:?} cut short");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit_in_every_codec() {
        let spaces = vec![b' '; 50 << 20];
        let mut b = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        b.write_all(&spaces).unwrap();
        let br = b.into_inner();
        let zst = ruzstd::encoding::compress_to_vec(&spaces[..], ruzstd::encoding::CompressionLevel::Fastest);
        for (codec, bomb) in [
            (Codec::Gzip, gzip(&spaces)),
            (Codec::Brotli, br),
            (Codec::Zstd, zst),
        ] {
            assert!(bomb.len() < 100_000, "{codec:?}: {}", bomb.len());
            let mut d = Decoder::new(codec, 1 << 20);
            let (mut total, mut largest) = (0usize, 0usize);
            for part in bomb.chunks(16 * 1024) {
                d.push(part, &mut |b| {
                    total += b.len();
                    largest = largest.max(b.len());
                });
            }
            let (complete, error) = d.finish(true, &mut |b| total += b.len());
            assert_eq!(total, 1 << 20, "{codec:?}");
            assert!(
                largest <= 300 * 1024,
                "{codec:?}: decoded bytes come in small pieces, not {largest}"
            );
            assert!(!complete, "{codec:?}");
            assert!(
                error
                    .unwrap()
                    .contains("decoding stopped at 1048576 decoded bytes"),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn a_zstd_block_bomb_is_drained_as_it_is_decoded() {
        // A frame with a 128 KiB window, then RLE blocks of 4 bytes that each stand for 128 KiB.
        let mut bomb = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
        for _ in 0..8192 {
            bomb.extend_from_slice(&[0x02, 0x00, 0x10, b'A']);
        }
        let mut d = Decoder::new(Codec::Zstd, 64 << 20);
        let mut total = 0usize;
        for part in bomb.chunks(4096) {
            d.push(part, &mut |b| total += b.len());
            let imp::State::Zstd(z) = &d.state else {
                unreachable!()
            };
            assert!(z.held() <= 4 << 20, "the decoder holds {} bytes", z.held());
        }
        let (complete, error) = d.finish(true, &mut |b| total += b.len());
        assert_eq!(total, 64 << 20);
        assert!(!complete && error.unwrap().contains("decoding stopped"));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let (_, complete, error) = decode(Codec::Gzip, b"definitely not gzip", 4, u64::MAX);
        assert!(!complete);
        assert!(error.unwrap().starts_with("the gzip body could not be decoded"));
        let body = gzip(b"some text that is long enough");
        let (_, complete, error) = decode(Codec::Gzip, &body[..body.len() - 6], 4, u64::MAX);
        assert!(!complete, "{error:?}");
        for codec in [Codec::Brotli, Codec::Zstd] {
            let (_, complete, error) =
                decode(codec, b"\xff\xfe garbage garbage garbage garbage", 3, u64::MAX);
            assert!(!complete && error.is_some(), "{codec:?}");
        }
    }

    #[test]
    fn the_header_names_the_codec() {
        let mut h = HeaderMap::new();
        assert_eq!(encoding(&h), Ok(None));
        h.insert(CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(encoding(&h), Ok(Some(Codec::Gzip)));
        h.insert(CONTENT_ENCODING, "gzip, br".parse().unwrap());
        assert!(encoding(&h).unwrap_err().contains("gzip, br"));
    }
}
