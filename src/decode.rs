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

/// Compressed bytes handed to a decoder at a time: at most about 1 KiB of deflate input can
/// expand to 1 MiB, so the output drained after each slice stays around a megabyte at worst.
#[cfg(feature = "decompress")]
const INPUT_SLICE: usize = 1024;

/// Decodes one body incrementally, within a bound on decoded bytes.
pub(crate) struct Decoder {
    codec: Codec,
    #[cfg(feature = "decompress")]
    state: imp::State,
    decoded: u64,
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
        for slice in frame.chunks(INPUT_SLICE) {
            if self.stopped {
                return;
            }
            let result = self.state.push(slice);
            self.drain(out);
            if let Err(e) = result {
                self.fail(e.to_string());
            }
        }
        #[cfg(not(feature = "decompress"))]
        let _ = (frame, out);
    }

    /// The body ended: decodes what is left. Returns whether the whole body was decoded, and
    /// why not.
    pub(crate) fn finish(&mut self, ended: bool, out: &mut dyn FnMut(&Bytes)) -> (bool, Option<String>) {
        #[cfg(feature = "decompress")]
        if ended && !self.stopped {
            let result = self.state.finish();
            self.drain(out);
            if let Err(e) = result {
                self.fail(e.to_string());
            }
        }
        #[cfg(not(feature = "decompress"))]
        let _ = (ended, out);
        let error = self
            .error
            .take()
            .map(|e| format!("the {} body could not be decoded: {e}", self.codec.name()));
        (!self.stopped && error.is_none(), error)
    }

    #[cfg(feature = "decompress")]
    fn drain(&mut self, out: &mut dyn FnMut(&Bytes)) {
        let mut decoded = self.state.take_output();
        if decoded.is_empty() {
            return;
        }
        let room = self.limit - self.decoded;
        if decoded.len() as u64 > room {
            decoded.truncate(room as usize);
            self.decoded = self.limit;
            self.stopped = true;
            self.error = Some(format!(
                "decoding stopped at {} decoded bytes (LogConfig::decoded_bytes); the rest was not read",
                self.limit
            ));
        } else {
            self.decoded += decoded.len() as u64;
        }
        if !decoded.is_empty() {
            out(&Bytes::from(decoded));
        }
    }

    #[cfg(feature = "decompress")]
    fn fail(&mut self, error: String) {
        self.stopped = true;
        self.error.get_or_insert(error);
    }
}

#[cfg(feature = "decompress")]
mod imp {
    use std::io::{self, Write};

    use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
    use ruzstd::decoding::FrameDecoder;

    use super::Codec;

    /// The most memory a zstd frame may ask for its window: HTTP's limit (RFC 9659).
    const ZSTD_WINDOW: u64 = 8 * 1024 * 1024;

    pub(super) enum State {
        Gzip(MultiGzDecoder<Vec<u8>>),
        /// Deflate: zlib-wrapped as HTTP says, or raw as some servers send; told by the first
        /// two bytes.
        DeflateUnknown(Vec<u8>),
        Zlib(ZlibDecoder<Vec<u8>>),
        RawDeflate(DeflateDecoder<Vec<u8>>),
        Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
        Zstd(Box<Zstd>),
    }

    impl State {
        pub(super) fn new(codec: Codec) -> Self {
            match codec {
                Codec::Gzip => State::Gzip(MultiGzDecoder::new(Vec::new())),
                Codec::Deflate => State::DeflateUnknown(Vec::new()),
                Codec::Brotli => State::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                    Vec::new(),
                    4096,
                ))),
                Codec::Zstd => State::Zstd(Box::new(Zstd::new())),
            }
        }

        pub(super) fn push(&mut self, input: &[u8]) -> io::Result<()> {
            match self {
                State::Gzip(d) => d.write_all(input),
                State::DeflateUnknown(head) => {
                    head.extend_from_slice(input);
                    if head.len() < 2 {
                        return Ok(());
                    }
                    let head = std::mem::take(head);
                    let zlib =
                        head[0] & 0x0F == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
                    *self = if zlib {
                        State::Zlib(ZlibDecoder::new(Vec::new()))
                    } else {
                        State::RawDeflate(DeflateDecoder::new(Vec::new()))
                    };
                    self.push(&head)
                }
                State::Zlib(d) => d.write_all(input),
                State::RawDeflate(d) => d.write_all(input),
                State::Brotli(d) => d.write_all(input),
                State::Zstd(d) => d.push(input),
            }
        }

        pub(super) fn finish(&mut self) -> io::Result<()> {
            match self {
                State::Gzip(d) => d.try_finish(),
                State::DeflateUnknown(head) if head.is_empty() => Ok(()),
                State::DeflateUnknown(_) => Err(io::Error::other("the body ended inside its header")),
                State::Zlib(d) => d.try_finish(),
                State::RawDeflate(d) => d.try_finish(),
                State::Brotli(d) => d.close(),
                State::Zstd(d) => d.finish(),
            }
        }

        pub(super) fn take_output(&mut self) -> Vec<u8> {
            match self {
                State::Gzip(d) => std::mem::take(d.get_mut()),
                State::DeflateUnknown(_) => Vec::new(),
                State::Zlib(d) => std::mem::take(d.get_mut()),
                State::RawDeflate(d) => std::mem::take(d.get_mut()),
                State::Brotli(d) => std::mem::take(d.get_mut()),
                State::Zstd(d) => std::mem::take(&mut d.output),
            }
        }
    }

    /// zstd with ruzstd's push interface: compressed bytes are held until a whole block is in
    /// (a block is at most 128 KiB).
    pub(super) struct Zstd {
        decoder: FrameDecoder,
        pending: Vec<u8>,
        output: Vec<u8>,
        started: bool,
    }

    /// A zstd block's largest size plus its header and a frame header.
    const MAX_PENDING: usize = 128 * 1024 + 3 + 18 + 4;

    impl Zstd {
        fn new() -> Self {
            let mut decoder = FrameDecoder::new();
            decoder.set_max_window_size(ZSTD_WINDOW);
            Zstd {
                decoder,
                pending: Vec::new(),
                output: Vec::new(),
                started: false,
            }
        }

        fn push(&mut self, input: &[u8]) -> io::Result<()> {
            self.pending.extend_from_slice(input);
            self.run()?;
            if self.pending.len() > MAX_PENDING {
                return Err(io::Error::other("a zstd block is larger than the format allows"));
            }
            Ok(())
        }

        fn run(&mut self) -> io::Result<()> {
            let mut buf = [0u8; 16 * 1024];
            loop {
                if self.started && self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                    // A frame ended; another may follow (concatenated frames are one stream).
                    if self.pending.is_empty() {
                        return Ok(());
                    }
                    self.decoder = FrameDecoder::new();
                    self.decoder.set_max_window_size(ZSTD_WINDOW);
                    self.started = false;
                }
                if !self.started && self.pending.len() < 18 {
                    // Not enough for any frame header yet: wait rather than fail on a short read.
                    return Ok(());
                }
                let (read, written) = self
                    .decoder
                    .decode_from_to(&self.pending, &mut buf)
                    .map_err(io::Error::other)?;
                self.started = true;
                self.pending.drain(..read);
                self.output.extend_from_slice(&buf[..written]);
                if read == 0 && written == 0 {
                    return Ok(());
                }
            }
        }

        fn finish(&mut self) -> io::Result<()> {
            if !self.started && !self.pending.is_empty() {
                // A short body: try what there is.
                let mut buf = [0u8; 16 * 1024];
                let (read, written) = self
                    .decoder
                    .decode_from_to(&self.pending, &mut buf)
                    .map_err(io::Error::other)?;
                self.started = true;
                self.pending.drain(..read);
                self.output.extend_from_slice(&buf[..written]);
            }
            self.run()?;
            if !self.pending.is_empty() || (self.started && !self.decoder.is_finished()) {
                return Err(io::Error::other("the body ended inside a zstd frame"));
            }
            Ok(())
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
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 50 << 20]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let (out, complete, error) = decode(Codec::Gzip, &bomb, 16 * 1024, 1 << 20);
        assert_eq!(out.len(), 1 << 20);
        assert!(!complete);
        assert!(error
            .unwrap()
            .contains("decoding stopped at 1048576 decoded bytes"));
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
