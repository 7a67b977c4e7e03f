//! The `staging` capability: content on its way into a mailbox (a message to send, an item
//! to store) lives in anonymous temporary files for the length of one request. The frontend
//! appends as it decodes the client's upload; the connector the request is routed to reads
//! it back in chunks. Neither plugin — nor the core — holds it in memory whole.

use std::io::{Seek, SeekFrom, Write};
use std::sync::Mutex;

use switchboard_sdk::Error;

/// Most uploads one request may stage.
pub const MAX_UPLOADS: usize = 64;
/// Largest chunk handed out by one read.
pub const MAX_READ: u32 = 1 << 20;

#[derive(Debug)]
struct Upload {
    file: std::fs::File,
    size: u64,
}

/// The staging area of one request.
#[derive(Debug)]
pub struct Staging {
    uploads: Mutex<Vec<Upload>>,
    limit: u64,
}

fn io(e: std::io::Error) -> Error {
    Error::Unavailable(format!("staging file: {e}"))
}

impl Staging {
    /// An empty area holding at most `limit` bytes in total (`http.max_body_bytes`).
    pub fn new(limit: u64) -> Staging {
        Staging {
            uploads: Mutex::default(),
            limit,
        }
    }

    fn with<R>(
        &self,
        id: u32,
        f: impl FnOnce(&mut Upload, u64) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = uploads.iter().map(|u| u.size).sum();
        let upload = uploads
            .get_mut(id as usize)
            .ok_or_else(|| Error::NotFound(format!("no staged upload {id} in this request")))?;
        f(upload, total)
    }

    /// A new, empty upload. The file is anonymous: the OS removes it when it is closed, so
    /// nothing outlives the request, not even after a crash.
    pub fn create(&self) -> Result<u32, Error> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if uploads.len() >= MAX_UPLOADS {
            return Err(Error::Quota(format!(
                "at most {MAX_UPLOADS} staged uploads per request"
            )));
        }
        let file = tempfile::tempfile().map_err(io)?;
        uploads.push(Upload { file, size: 0 });
        Ok(uploads.len() as u32 - 1)
    }

    /// Append bytes. Small synchronous writes to a temporary file land in the page cache;
    /// they do not block the runtime in any way that matters.
    pub fn append(&self, id: u32, data: &[u8]) -> Result<(), Error> {
        let limit = self.limit;
        self.with(id, |u, total| {
            if total + data.len() as u64 > limit {
                return Err(Error::Quota(format!(
                    "staged uploads of one request are limited to {limit} bytes (http.max_body_bytes)"
                )));
            }
            u.file.seek(SeekFrom::End(0)).map_err(io)?;
            u.file.write_all(data).map_err(io)?;
            u.size += data.len() as u64;
            Ok(())
        })
    }

    /// Up to `max` bytes from `offset`; empty at the end.
    pub fn read(&self, id: u32, offset: u64, max: u32) -> Result<Vec<u8>, Error> {
        use std::os::unix::fs::FileExt;
        self.with(id, |u, _| {
            let n = (max.clamp(1, MAX_READ) as u64).min(u.size.saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; n];
            u.file.read_exact_at(&mut buf, offset).map_err(io)?;
            Ok(buf)
        })
    }

    /// Bytes staged in `id`.
    pub fn size(&self, id: u32) -> Result<u64, Error> {
        self.with(id, |u, _| Ok(u.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_in_chunks_and_limits() {
        let s = Staging::new(3 << 20);
        let id = s.create().unwrap();
        let data: Vec<u8> = (0..(2 << 20)).map(|i| (i % 253) as u8).collect();
        for chunk in data.chunks(100_000) {
            s.append(id, chunk).unwrap();
        }
        assert_eq!(s.size(id).unwrap(), data.len() as u64);
        let mut back = Vec::new();
        loop {
            let chunk = s.read(id, back.len() as u64, 300_000).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 300_000);
            back.extend(chunk);
        }
        assert_eq!(back, data);
        // The limit counts every upload of the request.
        let other = s.create().unwrap();
        let err = s.append(other, &vec![0u8; (1 << 20) + 1]).unwrap_err();
        assert!(matches!(err, Error::Quota(_)), "{err}");
        assert_eq!(s.size(other).unwrap(), 0, "a refused append writes nothing");
        assert!(matches!(s.read(99, 0, 1), Err(Error::NotFound(_))));
        assert_eq!(s.read(id, 1 << 30, 10).unwrap(), Vec::<u8>::new());
    }
}
