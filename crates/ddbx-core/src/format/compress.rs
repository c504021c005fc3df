//! Streaming compression and decompression of data files (gzip, zstd, none).

use std::io::{Read, Write};

use flate2::write::GzEncoder;

use crate::plan::Compression;

/// A streaming compressor whose output is taken out as it grows.
pub enum Compressor {
    /// gzip.
    Gzip(GzEncoder<Vec<u8>>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// No compression.
    None(Vec<u8>),
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    /// A compressor for `c` at its default level.
    pub fn new(c: Compression) -> Self {
        match c {
            Compression::Gzip => {
                Compressor::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::default()))
            }
            Compression::Zstd => Compressor::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd level 3 is valid"),
            ),
            Compression::None => Compressor::None(Vec::new()),
        }
    }

    /// Feed uncompressed bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        // Writing into a Vec cannot fail.
        match self {
            Compressor::Gzip(e) => e.write_all(bytes).expect("in-memory write"),
            Compressor::Zstd(e) => e.write_all(bytes).expect("in-memory write"),
            Compressor::None(v) => v.extend_from_slice(bytes),
        }
    }

    /// How many compressed bytes are waiting to be taken.
    pub fn pending(&self) -> usize {
        match self {
            Compressor::Gzip(e) => e.get_ref().len(),
            Compressor::Zstd(e) => e.get_ref().len(),
            Compressor::None(v) => v.len(),
        }
    }

    /// Take the compressed bytes produced so far.
    pub fn take(&mut self) -> Vec<u8> {
        match self {
            Compressor::Gzip(e) => std::mem::take(e.get_mut()),
            Compressor::Zstd(e) => std::mem::take(e.get_mut()),
            Compressor::None(v) => std::mem::take(v),
        }
    }

    /// End the stream and return the last compressed bytes.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Compressor::Gzip(e) => e.finish().expect("in-memory write"),
            Compressor::Zstd(e) => e.finish().expect("in-memory write"),
            Compressor::None(v) => v,
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
