//! The ActiveSync command dispatcher must never panic, whatever a phone sends: the first byte
//! picks the command and protocol version, the rest is the request body (WBXML or MIME, as
//! the command takes), handled by the plugin against a mock host with the real local store
//! behind it. Every answer is an HTTP response or a parked request, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_eas::Eas;
use switchboard_sdk::http::Request;
use switchboard_sdk::mock::MockHost;
use switchboard_sdk::{HttpFrontend, Principal};

const COMMANDS: &[&str] = &[
    "Sync",
    "FolderSync",
    "Ping",
    "Provision",
    "ItemOperations",
    "SendMail",
    "SmartReply",
    "SmartForward",
    "MoveItems",
    "Search",
    "Settings",
    "GetItemEstimate",
    "FolderCreate",
    "FolderUpdate",
    "FolderDelete",
    "ResolveRecipients",
    "MeetingResponse",
    "ValidateCert",
    "GetAttachment",
];
const VERSIONS: &[&str] = &["12.1", "14.0", "14.1", "16.0", "16.1"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let cmd = COMMANDS[selector as usize % COMMANDS.len()];
    let version = VERSIONS[(selector as usize / COMMANDS.len()) % VERSIONS.len()];
    let host = MockHost::new()
        .with_config("require_provisioning", "false")
        .with_mail_connector::<switchboard_local::Local>(MockHost::new())
        .with_request_body(body);
    host.run(|| {
        let req = Request {
            method: "POST".into(),
            path: "/Microsoft-Server-ActiveSync".into(),
            query: format!("Cmd={cmd}&User=alice@example.com&DeviceId=fuzz1&DeviceType=Fuzz&AttachmentName=x"),
            headers: vec![
                ("ms-asprotocolversion".into(), version.into()),
                (
                    "content-type".into(),
                    "application/vnd.ms-sync.wbxml".into(),
                ),
            ],
            principal: Principal::parse("alice@example.com"),
            peer: "192.0.2.1:40000".into(),
            body: body.to_vec(),
            body_complete: true,
        };
        let _ = Eas::handle(req);
    });
});
