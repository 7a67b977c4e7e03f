//! `switchboard mail import`: real messages from `.eml` files (or directories of them) into a
//! user's mailbox, through the same routing a frontend's `create-item` takes — the mail
//! connector serving the user's domain (the built-in local store by default) — with each
//! file streamed through a staging upload in 64 KiB chunks, so memory stays bounded whatever
//! the message size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard_sdk::abi::{MailCall, MailReply};
use switchboard_sdk::{Error, Folder, FolderKind, ItemSummary, Principal};
use tokio::io::AsyncReadExt;

use crate::plugins::caps::staging::Staging;
use crate::plugins::caps::Routes;
use crate::plugins::PluginSet;

/// Bytes read from a file and appended to its upload at a time.
pub const CHUNK: usize = 64 * 1024;

/// Why the import could not start (nothing was imported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `--user` is not an address.
    #[error("--user {0:?} is not an address (expected local@domain)")]
    BadAddress(String),
    /// Listing the user's folders failed.
    #[error("cannot list the folders of {user}: {error}")]
    Folders {
        /// The address.
        user: String,
        /// What the connector answered.
        error: Error,
    },
    /// The folder asked for does not exist.
    #[error("{user} has no folder {name:?} (folders: {known})")]
    NoFolder {
        /// The address.
        user: String,
        /// `--folder`.
        name: String,
        /// The folder names there are.
        known: String,
    },
    /// A path on the command line cannot be read.
    #[error("{path}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Why one file was not imported (the others go on).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading the file failed.
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    /// The file is empty.
    #[error("it is empty")]
    Empty,
    /// The file does not start like an RFC 5322 message.
    #[error("not a message: line {line} is not a header field (\"Name: value\")")]
    NotMessage {
        /// 1-based line number.
        line: usize,
    },
    /// The file is larger than one upload may be.
    #[error("it is larger than {limit} bytes (http.max_body_bytes, the limit for any upload)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The connector refused the message.
    #[error("the mail connector refused it: {0}")]
    Connector(Error),
}

/// Where messages go.
#[derive(Debug, Clone)]
pub struct Target {
    /// Who.
    pub who: Principal,
    /// The folder.
    pub folder: Folder,
}

/// The principal for `address`.
pub fn principal(address: &str) -> Result<Principal, ImportError> {
    Principal::parse(address).ok_or_else(|| ImportError::BadAddress(address.to_string()))
}

/// Resolve `folder` (a folder name or id, case-insensitive; `None`: the Inbox) in the mailbox
/// of `who`, through the connector serving its domain.
pub async fn target(
    plugins: &PluginSet,
    who: Principal,
    folder: Option<&str>,
) -> Result<Target, ImportError> {
    let user = who.address();
    let staging = Arc::new(Staging::new(0));
    let folders = match plugins
        .mail(MailCall::ListFolders { who: who.clone() }, staging, None)
        .await
    {
        Ok(MailReply::Folders(f)) => f,
        Ok(other) => {
            return Err(ImportError::Folders {
                user,
                error: Error::Internal(format!("unexpected answer {other:?}")),
            })
        }
        Err(error) => return Err(ImportError::Folders { user, error }),
    };
    let found = match folder {
        None => folders.iter().find(|f| f.kind == FolderKind::Inbox),
        Some(name) => folders
            .iter()
            .find(|f| f.id == name)
            .or_else(|| folders.iter().find(|f| f.name.eq_ignore_ascii_case(name))),
    };
    match found {
        Some(f) => Ok(Target {
            who,
            folder: f.clone(),
        }),
        None => Err(ImportError::NoFolder {
            user,
            name: folder.unwrap_or("Inbox").to_string(),
            known: folders
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The files to import for `paths`: files as given, directories walked (sorted, recursively;
/// names starting with `.` skipped).
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
        let fail = |e: std::io::Error| ImportError::Path {
            path: dir.display().to_string(),
            reason: format!("cannot list the directory: {e}"),
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(fail)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        entries.sort();
        for p in entries {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.is_file() {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(ImportError::Path {
                path: p.display().to_string(),
                reason: "no such file or directory".into(),
            });
        }
    }
    Ok(out)
}

/// Whether `head` (the start of a file; `complete`: the whole file) begins like a message:
/// header fields, possibly after an mbox `From ` envelope line. The error names the 1-based
/// line that is not a header field.
fn check_head(head: &[u8], complete: bool) -> Result<(), FileError> {
    // A line cut at the end of the chunk is not judged.
    let head = match head.iter().rposition(|b| *b == b'\n') {
        Some(end) if !complete => &head[..end],
        _ => head,
    };
    let mut lines = head.split(|b| *b == b'\n').enumerate().peekable();
    if lines.peek().is_some_and(|(_, l)| l.starts_with(b"From ")) {
        lines.next();
    }
    let mut fields = 0;
    for (i, line) in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if fields == 0 {
                return Err(FileError::NotMessage { line: i + 1 });
            }
            continue; // folded continuation
        }
        let name_ok = line
            .iter()
            .position(|b| *b == b':')
            .is_some_and(|colon| colon > 0 && line[..colon].iter().all(|b| b.is_ascii_graphic()));
        if !name_ok {
            return Err(FileError::NotMessage { line: i + 1 });
        }
        fields += 1;
        if i > 200 {
            break; // enough evidence; the rest of a long header is the connector's business
        }
    }
    if fields == 0 {
        return Err(FileError::NotMessage { line: 1 });
    }
    Ok(())
}

/// Import one file into `target`: read it in [`CHUNK`]s into a fresh staging upload (at most
/// `limit` bytes), then `create-item` on the connector serving the user's domain.
pub async fn import_file(
    plugins: &PluginSet,
    target: &Target,
    path: &Path,
    limit: u64,
) -> Result<ItemSummary, FileError> {
    let mut file = tokio::fs::File::open(path).await.map_err(FileError::Read)?;
    let staging = Arc::new(Staging::new(limit));
    let id = staging.create().map_err(FileError::Connector)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut file, &mut buf)
            .await
            .map_err(FileError::Read)?;
        if n == 0 {
            break;
        }
        // An mbox-style envelope line (`From sender date`) is not part of the message.
        let mut start = 0;
        if total == 0 {
            check_head(&buf[..n], n < CHUNK)?;
            if buf[..n].starts_with(b"From ") {
                start = buf[..n]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(n, |i| i + 1);
            }
        }
        total += n as u64;
        if total > limit {
            return Err(FileError::TooLarge { limit });
        }
        staging
            .append(id, &buf[start..n])
            .map_err(FileError::Connector)?;
    }
    if total == 0 {
        return Err(FileError::Empty);
    }
    let call = MailCall::CreateItem {
        who: target.who.clone(),
        folder_id: target.folder.id.clone(),
        content: id,
    };
    match plugins.mail(call, staging, None).await {
        Ok(MailReply::Item(item)) => Ok(item),
        Ok(other) => Err(FileError::Connector(Error::Internal(format!(
            "unexpected answer {other:?}"
        )))),
        Err(e) => Err(FileError::Connector(e)),
    }
}

/// Fill `buf` from `file` unless the file ends first; the number of bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        assert!(check_head(b"From: a@b\r\nSubject: x\r\n\r\nbody", true).is_ok());
        assert!(check_head(
            b"From a@b Mon Jan  1 00:00:00 2024\nFrom: a@b\n\nbody",
            true
        )
        .is_ok());
        assert!(check_head(b"Subject: a\n folded\nTo: b\n\n", true).is_ok());
        assert!(check_head(b"Subject: a\nTo: b", true).is_ok());
        // A chunk that ends mid-line: the cut line is not judged.
        assert!(check_head(b"Subject: a\nX-Long-Header-Cut", false).is_ok());
        assert!(matches!(
            check_head(b"hello world\n", true),
            Err(FileError::NotMessage { line: 1 })
        ));
        assert!(matches!(
            check_head(b"Subject: a\nnot a header\n\n", true),
            Err(FileError::NotMessage { line: 2 })
        ));
        assert!(matches!(
            check_head(b"\n\nbody", true),
            Err(FileError::NotMessage { line: 1 })
        ));
        assert!(matches!(
            check_head(b" folded: first\n", true),
            Err(FileError::NotMessage { line: 1 })
        ));
    }
}
