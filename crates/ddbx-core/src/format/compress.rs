//! Streaming compression and decompression of data files (gzip, zstd, none).

use std::io::{Read, Write};

use flate2::write::GzEncoder;

use crate::plan::Compression;

/// A streaming compressor whose output is taken out as it grows.
///
/// Input is gathered into blocks of [`BLOCK`] bytes before the codec sees it. Why: an
/// export writes one line (~200 bytes) at a time, and zstd's streaming encoder fed that
/// way compresses from its wrapped round buffer ("extDict": 30 % of an export's CPU,
/// `perf` in `docs/BENCHMARKS.md`, issue 26), twice what the same bytes cost in blocks;
/// deflate's per-call cost falls too.
pub struct Compressor {
    codec: Codec,
    input: Vec<u8>,
}

/// The codec's encoder, writing into memory.
enum Codec {
    Gzip(GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    None(Vec<u8>),
}

/// How many uncompressed bytes are gathered before the codec compresses them (zstd's
/// block size).
const BLOCK: usize = 128 * 1024;

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    /// A compressor for `c` at its default level.
    pub fn new(c: Compression) -> Self {
        let codec = match c {
            Compression::Gzip => {
                Codec::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::default()))
            }
            Compression::Zstd => Codec::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd level 3 is valid"),
            ),
            Compression::None => Codec::None(Vec::new()),
        };
        let input = match codec {
            Codec::None(_) => Vec::new(),
            _ => Vec::with_capacity(BLOCK),
        };
        Compressor { codec, input }
    }

    /// A compressor that writes its input as it is.
    pub fn none() -> Self {
        Self::new(Compression::None)
    }

    /// Feed uncompressed bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        if let Codec::None(v) = &mut self.codec {
            v.extend_from_slice(bytes);
            return;
        }
        if self.input.len() + bytes.len() > BLOCK && !self.input.is_empty() {
            self.compress_input();
        }
        if bytes.len() >= BLOCK {
            self.codec.write(bytes);
        } else {
            self.input.extend_from_slice(bytes);
        }
    }

    fn compress_input(&mut self) {
        self.codec.write(&self.input);
        self.input.clear();
    }

    /// How many compressed bytes are waiting to be taken.
    pub fn pending(&self) -> usize {
        match &self.codec {
            Codec::Gzip(e) => e.get_ref().len(),
            Codec::Zstd(e) => e.get_ref().len(),
            Codec::None(v) => v.len(),
        }
    }

    /// Take the compressed bytes produced so far.
    pub fn take(&mut self) -> Vec<u8> {
        match &mut self.codec {
            Codec::Gzip(e) => std::mem::take(e.get_mut()),
            Codec::Zstd(e) => std::mem::take(e.get_mut()),
            Codec::None(v) => std::mem::take(v),
        }
    }

    /// End the stream and return the last compressed bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.compress_input();
        match self.codec {
            Codec::Gzip(e) => e.finish().expect("in-memory write"),
            Codec::Zstd(e) => e.finish().expect("in-memory write"),
            Codec::None(v) => v,
        }
    }
}

impl Codec {
    fn write(&mut self, bytes: &[u8]) {
        // Writing into a Vec cannot fail.
        match self {
            Codec::Gzip(e) => e.write_all(bytes).expect("in-memory write"),
            Codec::Zstd(e) => e.write_all(bytes).expect("in-memory write"),
            Codec::None(v) => v.extend_from_slice(bytes),
        }
    }
}

/// Detect compression from a file name's ending, then from its first bytes.
pub fn detect(name: &str, head: &[u8]) -> Compression {
    if name.ends_with(".gz") || head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if name.ends_with(".zst")
        || name.ends_with(".zstd")
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
    {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A reader that decompresses `inner` (multi-member gzip streams included).
pub fn decompressing_reader<'a, R: std::io::BufRead + 'a>(
    c: Compression,
    inner: R,
) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(inner)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(inner)?),
        Compression::None => Box::new(inner),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each_codec_with_partial_takes() {
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let mut z = Compressor::new(c);
            let mut out = Vec::new();
            for i in 0..10_000 {
                z.write(format!("line {i}\n").as_bytes());
                if z.pending() > 1000 {
                    out.extend(z.take());
                }
            }
            out.extend(z.finish());
            assert_eq!(
                detect("x", &out),
                if c == Compression::None {
                    Compression::None
                } else {
                    c
                }
            );
            let mut text = String::new();
            decompressing_reader(c, &out[..])
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text.lines().count(), 10_000);
            assert_eq!(text.lines().last(), Some("line 9999"));
        }
    }
}
