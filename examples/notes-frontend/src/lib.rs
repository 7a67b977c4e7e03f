//! A small HTTP frontend showing each part of the SDK:
//!
//! - `GET  /example/notes/NAME` reads a note from kv, `PUT` stores it and publishes
//!   `notes:USER/NAME`; `GET /example/notes/` lists the user's notes (kv scan).
//! - `GET  /example/notes/NAME?wait=SECS` *parks* until the note changes or the time is up —
//!   the server holds the request, not this plugin.
//! - `GET  /example/notes/_mail` lists the user's folders and Inbox through the mailstore
//!   (routed by the server to the connector of the user's domain);
//!   `GET /example/notes/_mail/ITEM` streams one message via a body part.
//! - `POST /example/notes/_send` stages the body (a MIME message) in chunks and submits it
//!   through the mailstore — bounded memory for any size.
//! - `POST /example/notes/_echo` answers with the request body (the benchmark handler).
//! - `GET /example/notes/_config` shows a setting; `GET /example/notes/_count` the number of
//!   notes, kept in step with the notes by atomic `kv::commit`s.

use switchboard_sdk::host::staging::Upload;
use switchboard_sdk::http::{BodyPart, ItemRef, Outcome, Park, Request, Response};
use switchboard_sdk::{host, Change, HttpFrontend, Principal};

/// The plugin.
pub struct Notes;

const PREFIX: &str = "/example/notes";

fn reply(r: Response) -> Outcome {
    Outcome::Reply(r)
}

fn note_key(who: &Principal, name: &str) -> String {
    format!("note/{}/{name}", who.address())
}

fn event_key(who: &Principal, name: &str) -> String {
    format!("notes:{}/{name}", who.address())
}

fn read_body(req: &Request, limit: usize) -> Result<Vec<u8>, Response> {
    let mut body = req.body.clone();
    if !req.body_complete {
        loop {
            let chunk = host::request_body::read(64 * 1024)
                .map_err(|e| Response::text(500, e.to_string()))?;
            if chunk.is_empty() {
                break;
            }
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                break;
            }
        }
    }
    if body.len() > limit {
        return Err(Response::text(
            413,
            format!("notes are limited to {limit} bytes"),
        ));
    }
    Ok(body)
}

/// Stage the request body (a MIME message) chunk by chunk and hand it to the mailstore's
/// `send`: however big the message, neither this plugin nor the host holds it whole.
fn send(who: &Principal, req: &Request) -> Response {
    let staged = (|| {
        let upload = Upload::create()?;
        upload.append(&req.body)?;
        if !req.body_complete {
            loop {
                let chunk = host::request_body::read(256 * 1024)?;
                if chunk.is_empty() {
                    break;
                }
                upload.append(&chunk)?;
            }
        }
        host::mailstore::send(who, &upload, true)?;
        upload.size()
    })();
    match staged {
        Ok(size) => Response::text(202, format!("accepted {size} bytes")),
        Err(switchboard_sdk::Error::Quota(e)) => Response::text(413, e),
        Err(e) => Response::text(502, e.to_string()),
    }
}

fn count_key(who: &Principal) -> String {
    format!("count/{}", who.address())
}

/// Store a note and keep the user's note count in step, atomically: one `kv::commit` checks
/// what was read and writes both keys, and a lost race is simply retried.
fn store_note(who: &Principal, name: &str, body: &[u8]) -> switchboard_sdk::Result<()> {
    loop {
        let old_note = host::kv::get(&note_key(who, name))?;
        let old_count = host::kv::get(&count_key(who))?;
        let count: u64 = old_count
            .as_deref()
            .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok())
            .unwrap_or(0);
        let new_count = count + u64::from(old_note.is_none());
        let commit = host::kv::Commit::new()
            .check(&note_key(who, name), old_note.as_deref())
            .check(&count_key(who), old_count.as_deref())
            .set(&note_key(who, name), body)
            .set(&count_key(who), new_count.to_string().as_bytes());
        if host::kv::commit(&commit)? {
            return Ok(());
        }
    }
}

/// Delete a note and decrement the count in one commit; `false` if there was no such note.
fn delete_note(who: &Principal, name: &str) -> switchboard_sdk::Result<bool> {
    loop {
        let Some(old_note) = host::kv::get(&note_key(who, name))? else {
            return Ok(false);
        };
        let old_count = host::kv::get(&count_key(who))?;
        let count: u64 = old_count
            .as_deref()
            .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok())
            .unwrap_or(1);
        let commit = host::kv::Commit::new()
            .check(&note_key(who, name), Some(&old_note))
            .check(&count_key(who), old_count.as_deref())
            .delete(&note_key(who, name))
            .set(
                &count_key(who),
                count.saturating_sub(1).to_string().as_bytes(),
            );
        if host::kv::commit(&commit)? {
            return Ok(true);
        }
    }
}

fn show_note(who: &Principal, name: &str) -> Response {
    match host::kv::get(&note_key(who, name)) {
        Ok(Some(v)) => Response::new(200, "text/plain; charset=utf-8", v),
        Ok(None) => Response::text(404, format!("no note named {name}")),
        Err(e) => Response::text(500, e.to_string()),
    }
}

fn mail(who: &Principal, rest: &str) -> Response {
    if !rest.is_empty() {
        // Stream the item: the server copies it from the connector in chunks.
        return Response {
            status: 200,
            headers: vec![("content-type".into(), "message/rfc822".into())],
            body: vec![BodyPart::Item(ItemRef {
                who: who.clone(),
                item_id: rest.to_string(),
                part_id: None,
            })],
        };
    }
    let folders = match host::mailstore::list_folders(who) {
        Ok(f) => f,
        Err(e) => return Response::text(502, e.to_string()),
    };
    let mut out = String::new();
    for f in &folders {
        out.push_str(&format!("folder {} {:?} {}\n", f.id, f.kind, f.name));
    }
    if let Some(inbox) = folders
        .iter()
        .find(|f| f.kind == switchboard_sdk::FolderKind::Inbox)
    {
        match host::mailstore::sync(who, &inbox.id, None, 100) {
            Ok(page) => {
                for change in page.changes {
                    if let Change::Added(item) = change {
                        out.push_str(&format!(
                            "item {} {} | {}\n",
                            item.id, item.size, item.subject
                        ));
                    }
                }
            }
            Err(e) => return Response::text(502, e.to_string()),
        }
    }
    Response::text(200, out)
}

impl HttpFrontend for Notes {
    fn handle(req: Request) -> Outcome {
        let Some(who) = req.principal.clone() else {
            return reply(Response::text(401, "log in first"));
        };
        let rest = req
            .path
            .get(PREFIX.len()..)
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        let limit = host::config::get("max_note_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(65536usize);
        match (req.method.as_str(), rest.as_str()) {
            ("POST", "_echo") => {
                // The benchmark handler: one host call, the body back with a checksum header.
                let tag = host::config::get("echo_tag").unwrap_or_default();
                let sum = req
                    .body
                    .iter()
                    .fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b));
                let mut body = tag.into_bytes();
                body.extend_from_slice(&req.body);
                reply(
                    Response::new(200, "application/octet-stream", body)
                        .with_header("x-checksum", &format!("{sum:08x}")),
                )
            }
            ("POST", "_send") => reply(send(&who, &req)),
            ("GET", "_count") => match host::kv::get(&count_key(&who)) {
                Ok(v) => reply(Response::new(
                    200,
                    "text/plain",
                    v.unwrap_or_else(|| b"0".to_vec()),
                )),
                Err(e) => reply(Response::text(500, e.to_string())),
            },
            ("GET", "_config") => reply(Response::text(200, format!("max_note_bytes={limit}"))),
            ("GET", r) if r == "_mail" || r.starts_with("_mail/") => reply(mail(
                &who,
                r.trim_start_matches("_mail").trim_start_matches('/'),
            )),
            ("GET", "") => {
                let prefix = format!("note/{}/", who.address());
                match host::kv::scan(&prefix, None, 1000) {
                    Ok(rows) => {
                        let names: Vec<&str> =
                            rows.iter().map(|(k, _)| &k[prefix.len()..]).collect();
                        reply(Response::text(200, names.join("\n")))
                    }
                    Err(e) => reply(Response::text(500, e.to_string())),
                }
            }
            ("GET", name) => match req.query_param("wait").and_then(|w| w.parse::<u32>().ok()) {
                Some(secs) => Outcome::Park(Park {
                    watch: vec![event_key(&who, name)],
                    timeout_ms: secs.min(3600) * 1000,
                    state: format!("{}\n{name}", who.address()).into_bytes(),
                    on_timeout: Response::text(204, ""),
                    group: req.query_param("group"),
                }),
                None => reply(show_note(&who, name)),
            },
            ("PUT", name) if !name.is_empty() && !name.contains('/') => {
                let body = match read_body(&req, limit) {
                    Ok(b) => b,
                    Err(r) => return reply(r),
                };
                if let Err(e) = store_note(&who, name, &body) {
                    return reply(Response::text(500, e.to_string()));
                }
                if let Err(e) = host::events::publish(&event_key(&who, name)) {
                    host::log::warn(&format!("publish failed: {e}"));
                }
                reply(Response::text(204, ""))
            }
            ("DELETE", name) if !name.is_empty() => match delete_note(&who, name) {
                Ok(true) => reply(Response::text(204, "")),
                Ok(false) => reply(Response::text(404, format!("no note named {name}"))),
                Err(e) => reply(Response::text(500, e.to_string())),
            },
            _ => reply(Response::text(405, "unsupported method or path")),
        }
    }

    fn resume(state: Vec<u8>, _fired: Vec<String>) -> Outcome {
        let text = String::from_utf8_lossy(&state);
        let Some((who, name)) = text.split_once('\n') else {
            return reply(Response::text(500, "bad parked state"));
        };
        match Principal::parse(who) {
            Some(who) => reply(show_note(&who, name)),
            None => reply(Response::text(500, "bad parked state")),
        }
    }
}

switchboard_sdk::export_wasm!(http_frontend: Notes);
switchboard_sdk::export_native!(http_frontend: Notes);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::mock::MockHost;

    fn req(method: &str, path: &str, query: &str, body: &[u8]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![],
            principal: Principal::parse("alice@example.com"),
            peer: "127.0.0.1:1".into(),
            body: body.to_vec(),
            body_complete: true,
        }
    }

    fn status(o: &Outcome) -> u16 {
        match o {
            Outcome::Reply(r) => r.status,
            Outcome::Park(_) => 0,
        }
    }

    #[test]
    fn put_get_list_and_publish() {
        let host = MockHost::new();
        assert_eq!(
            status(&host.handle::<Notes>(req("PUT", "/example/notes/todo", "", b"milk"))),
            204
        );
        match host.handle::<Notes>(req("GET", "/example/notes/todo", "", b"")) {
            Outcome::Reply(r) => assert_eq!(r.body_bytes(), b"milk"),
            o => panic!("{o:?}"),
        }
        assert_eq!(host.events(), ["notes:alice@example.com/todo"]);
        match host.handle::<Notes>(req("GET", "/example/notes", "", b"")) {
            Outcome::Reply(r) => assert_eq!(r.body_bytes(), b"todo"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn wait_parks_and_resume_reads_the_note() {
        let host = MockHost::new();
        let parked = host.handle::<Notes>(req("GET", "/example/notes/todo", "wait=30", b""));
        let Outcome::Park(p) = parked else {
            panic!("expected park")
        };
        assert_eq!(p.watch, ["notes:alice@example.com/todo"]);
        assert_eq!(p.timeout_ms, 30_000);
        host.handle::<Notes>(req("PUT", "/example/notes/todo", "", b"eggs"));
        match host.resume::<Notes>(p.state, p.watch) {
            Outcome::Reply(r) => assert_eq!(r.body_bytes(), b"eggs"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn oversized_note_is_refused_and_nothing_is_stored() {
        let host = MockHost::new().with_config("max_note_bytes", "3");
        assert_eq!(
            status(&host.handle::<Notes>(req("PUT", "/example/notes/x", "", b"toolong"))),
            413
        );
        assert_eq!(host.kv_get("note/alice@example.com/x"), None);
    }
}
