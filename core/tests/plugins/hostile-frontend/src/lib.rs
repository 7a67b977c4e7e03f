//! Test fixture: each path misbehaves in one way, so the host's containment can be tested
//! through real requests. Never deploy this.

use switchboard_sdk::http::{Outcome, Request, Response};
use switchboard_sdk::{host, Error, HttpFrontend};

/// The plugin.
pub struct Hostile;

fn reply(status: u16, text: &str) -> Outcome {
    Outcome::Reply(Response::text(status, text))
}

#[inline(never)]
fn spin(seed: u64) -> u64 {
    let mut x = seed;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 42 {
            return x;
        }
    }
}

impl HttpFrontend for Hostile {
    fn handle(req: Request) -> Outcome {
        match req.path.trim_start_matches("/hostile/") {
            "ok" => reply(200, "ok"),
            // Holds its instance across many host calls (each one yields to the host), so
            // concurrent requests need as many instances at once.
            "ok-slow" => {
                for i in 0..200 {
                    if let Err(e) = host::kv::get(&format!("slow/{i}")) {
                        return reply(500, &e.to_string());
                    }
                }
                reply(200, "ok")
            }
            "loop" => reply(200, &spin(req.body.len() as u64 + 7).to_string()),
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    if hoard.len() == usize::MAX {
                        return reply(200, "unreachable");
                    }
                }
            }
            "trap" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                reply(500, "traps only exist in WebAssembly")
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "kvflood" => {
                let big = vec![0u8; 64 * 1024];
                for i in 0.. {
                    match host::kv::set(&format!("flood/{i}"), &big) {
                        Ok(()) => continue,
                        Err(Error::Quota(e)) => return reply(507, &e),
                        Err(e) => return reply(500, &e.to_string()),
                    }
                }
                reply(200, "unreachable")
            }
            "foreign-event" => match host::events::publish("mailbox:someone@example.com/inbox") {
                Ok(()) => reply(200, "published"),
                Err(Error::Denied(e)) => reply(403, &e),
                Err(e) => reply(500, &e.to_string()),
            },
            "other-mailbox" => {
                let victim = switchboard_sdk::Principal::parse("bob@example.com")
                    .unwrap_or_else(|| unreachable!());
                match host::mailstore::list_folders(&victim) {
                    Ok(_) => reply(200, "read someone else's mailbox"),
                    Err(Error::Denied(e)) => reply(403, &e),
                    Err(e) => reply(500, &e.to_string()),
                }
            }
            _ => reply(404, "no such misbehaviour"),
        }
    }
}

switchboard_sdk::export_wasm!(http_frontend: Hostile);
switchboard_sdk::export_native!(http_frontend: Hostile);
