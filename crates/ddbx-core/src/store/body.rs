//! A document's bytes as it is written (flags, plans, the restore plan): in memory up to
//! [`SPILL_BYTES`], past that in an unnamed temporary file. A fleet's documents list every
//! table (megabytes at ten thousand tables); made from values read back one at a time
//! (`spool`), they are never whole in memory. To a local folder a large one goes in parts
//! of [`LOCAL_PART_BYTES`] (one file, renamed into place when complete); to S3 in one PUT
//! (read back whole for it: a multipart upload would give a retained bucket's documents
//! another path to check, for a few megabytes held for the length of one request).

use std::io::{Read, Seek, SeekFrom, Write};

use object_store::PutPayload;

use super::Location;
use crate::spool::SPILL_BYTES;
use crate::{Error, Result};

/// The parts a large document is written to a local folder in (as data files are:
/// `format::writer::LOCAL_PART_BYTES`).
const LOCAL_PART_BYTES: usize = 1024 * 1024;

/// A document's bytes.
#[derive(Debug)]
pub struct Body(Kept);

#[derive(Debug)]
enum Kept {
    Memory(Vec<u8>),
    File(std::fs::File),
}

impl Body {
    /// `value` as the documents of a run are written: pretty JSON with a final newline.
    /// `name` is the document, for the error of a value that cannot be read back.
    pub fn json(name: &str, value: &impl serde::Serialize) -> Result<Self> {
        let mut out = Spilling::Memory(Vec::new(), true);
        serde_json::to_writer_pretty(&mut out, value)
            .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io))
            .map_err(|e| Error::Failed(format!("writing {name}: {e}")))?;
        match out {
            Spilling::Memory(bytes, _) => Ok(Body(Kept::Memory(bytes))),
            Spilling::File(file) => file
                .into_inner()
                .map(|f| Body(Kept::File(f)))
                .map_err(|e| Error::Failed(format!("writing {name}: {}", e.error()))),
        }
    }

    /// Its bytes, whole.
    fn whole(self) -> std::io::Result<Vec<u8>> {
        match self.0 {
            Kept::Memory(bytes) => Ok(bytes),
            Kept::File(mut file) => {
                let mut bytes = Vec::new();
                file.seek(SeekFrom::Start(0))?;
                file.read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}

/// A writer into memory that moves to a temporary file past [`SPILL_BYTES`] (and stays in
/// memory where none can be made: tried once). The file is written through a buffer:
/// JSON is written a few bytes at a time.
enum Spilling {
    /// The bytes so far, and whether a temporary file may still be tried.
    Memory(Vec<u8>, bool),
    File(std::io::BufWriter<std::fs::File>),
}

impl Write for Spilling {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Spilling::Memory(bytes, may_spill @ true) = self {
            if bytes.len() + buf.len() > SPILL_BYTES {
                match tempfile::tempfile().and_then(|mut f| f.write_all(bytes).map(|()| f)) {
                    Ok(file) => {
                        *self = Spilling::File(std::io::BufWriter::with_capacity(64 * 1024, file))
                    }
                    Err(e) => {
                        tracing::debug!("no temporary file for a document ({e}): in memory");
                        *may_spill = false;
                    }
                }
            }
        }
        match self {
            Spilling::Memory(bytes, _) => bytes.write(buf),
            Spilling::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Spilling::Memory(..) => Ok(()),
            Spilling::File(file) => file.flush(),
        }
    }
}

impl Location {
    /// Write `body` at `rel`.
    pub async fn put_document(&self, rel: &str, body: Body) -> Result<()> {
        let path = self.join(rel);
        let url = || self.url_of(&path);
        let file = match body.0 {
            Kept::File(file) if self.bucket.is_none() => file,
            other => {
                let whole = Body(other)
                    .whole()
                    .map_err(|e| Error::Failed(format!("{}: reading it back: {e}", url())))?;
                return self.put_body(rel, whole.into()).await;
            }
        };
        let mut upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| Error::store(url(), e))?;
        let sent = async {
            let mut file = file;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| Error::Failed(format!("{}: reading it back: {e}", url())))?;
            loop {
                let mut part = Vec::with_capacity(LOCAL_PART_BYTES);
                (&mut file)
                    .take(LOCAL_PART_BYTES as u64)
                    .read_to_end(&mut part)
                    .map_err(|e| Error::Failed(format!("{}: reading it back: {e}", url())))?;
                if part.is_empty() {
                    break;
                }
                upload
                    .put_part(PutPayload::from(part))
                    .await
                    .map_err(|e| Error::store(url(), e))?;
            }
            upload.complete().await.map_err(|e| Error::store(url(), e))
        }
        .await;
        if let Err(e) = sent {
            let _ = upload.abort().await;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_document_reads_back_as_written_in_memory_and_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = super::super::open_folder(dir.path().to_str().unwrap(), false).unwrap();
        for n in [3usize, 200_000] {
            let value: Vec<String> = (0..n).map(|i| format!("table-{i}")).collect();
            let body = Body::json("doc.json", &value).unwrap();
            assert_eq!(matches!(body.0, Kept::File(_)), n > 3, "{n}");
            root.put_document(&format!("doc-{n}.json"), body)
                .await
                .unwrap();
            let written = std::fs::read(dir.path().join(format!("doc-{n}.json"))).unwrap();
            let mut expected = serde_json::to_vec_pretty(&value).unwrap();
            expected.push(b'\n');
            assert!(written.len() > LOCAL_PART_BYTES || n == 3);
            assert_eq!(written, expected);
        }
    }
}
