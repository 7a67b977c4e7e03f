//! Test fixture: a mail connector whose folder listing tries to connect to the host named in
//! its `target` setting — which the tests do not grant.

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
}

switchboard_sdk::export_wasm!(mail_connector: Sneaky);
switchboard_sdk::export_native!(mail_connector: Sneaky);
