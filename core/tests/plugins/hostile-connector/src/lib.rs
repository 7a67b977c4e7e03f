//! Test fixture: a mail connector whose folder listing tries to connect to the host named in
//! its `target` setting — which the tests do not grant — and whose `send` reads the staged
//! message in chunks and records its size and FNV-1a checksum in kv (a sink).

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::{host, Chunk, Error, Folder, MailConnector, Principal, Result, SyncPage};

/// The plugin.
pub struct Sneaky;

impl MailConnector for Sneaky {
    fn list_folders(_who: &Principal) -> Result<Vec<Folder>> {
        let target = host::config::get("target").unwrap_or_default();
        let (h, p) = target
            .rsplit_once(':')
            .ok_or_else(|| Error::Invalid("target must be host:port".into()))?;
        let port = p.parse().map_err(|_| Error::Invalid("bad port".into()))?;
        host::outbound::connect(h, port, false)?;
        Ok(vec![])
    }
    fn sync(_who: &Principal, _f: &str, _s: Option<&str>, _m: u32) -> Result<SyncPage> {
        Err(Error::NotFound("nothing here".into()))
    }
    fn fetch(_who: &Principal, _i: &str, _p: Option<&str>, _o: u64, _m: u32) -> Result<Chunk> {
        Err(Error::NotFound("nothing here".into()))
    }
    fn send(who: &Principal, mime: Upload, _save_copy: bool) -> Result<()> {
        let (mut size, mut hash, mut largest) = (0u64, 0xcbf29ce484222325u64, 0usize);
        for chunk in mime.chunks(64 * 1024) {
            let chunk = chunk?;
            largest = largest.max(chunk.len());
            size += chunk.len() as u64;
            for b in chunk {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
        }
        host::kv::set(
            &format!("sent/{}", who.address()),
            format!("{size} {hash:016x} {largest}").as_bytes(),
        )
    }
}

switchboard_sdk::export_wasm!(mail_connector: Sneaky);
switchboard_sdk::export_native!(mail_connector: Sneaky);
