//! The OPTIONS answer ([MS-ASHTTP] 2.2.3 / 3.2.5.1): which protocol versions and commands the
//! server offers. Clients ask before their first command and after a server change.

use switchboard_sdk::http::Response;

use super::command::SERVED;
use super::version::SUPPORTED_HEADER;

/// What the server reports as its own ActiveSync version (`MS-Server-ActiveSync`).
pub const SERVER_VERSION: &str = "16.1";

/// The `MS-ASProtocolCommands` header value: the commands this server serves.
pub fn commands_header() -> String {
    SERVED
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The 200 answer to `OPTIONS /Microsoft-Server-ActiveSync`.
pub fn response() -> Response {
    Response {
        status: 200,
        headers: vec![
            ("allow".into(), "OPTIONS,POST".into()),
            ("public".into(), "OPTIONS,POST".into()),
            ("ms-server-activesync".into(), SERVER_VERSION.into()),
            ("ms-asprotocolversions".into(), SUPPORTED_HEADER.into()),
            ("ms-asprotocolcommands".into(), commands_header()),
            ("cache-control".into(), "private".into()),
        ],
        body: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn options_lists_versions_and_commands() {
        let r = response();
        assert_eq!(r.status, 200);
        assert_eq!(
            header(&r, "MS-ASProtocolVersions"),
            Some("12.1,14.0,14.1,16.0,16.1")
        );
        let cmds = header(&r, "MS-ASProtocolCommands").unwrap();
        for c in [
            "Sync",
            "FolderSync",
            "Provision",
            "Ping",
            "ItemOperations",
            "Settings",
        ] {
            assert!(cmds.split(',').any(|x| x == c), "{c} in {cmds}");
        }
        assert_eq!(header(&r, "MS-Server-ActiveSync"), Some("16.1"));
        assert!(r.body.is_empty());
    }
}
