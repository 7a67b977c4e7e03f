//! The Sync request as data ([MS-ASCMD] 2.2.1.21): collections with their keys, options and
//! client commands, and the long-poll parameters. Parsing is total: missing or malformed
//! parts are reported as [`Invalid`], never a panic.

use serde::{Deserialize, Serialize};
use switchboard_wbxml::{tags::airsync as a, Element};

use crate::item::body::{self, BodyPref};

/// The most collections in one request.
pub const MAX_COLLECTIONS: usize = 100;
/// The most client commands per collection.
pub const MAX_COMMANDS: usize = 1000;
/// The largest window.
pub const MAX_WINDOW: u32 = 512;
/// The window when none is given.
pub const DEFAULT_WINDOW: u32 = 100;

/// Collection options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// FilterType (0: everything).
    pub filter: u8,
    /// Body preferences, most wanted first.
    #[serde(skip)]
    pub body: Vec<BodyPref>,
    /// The preferences as (type, truncation, all-or-none, preview) for the request cache.
    pub body_raw: Vec<(u8, Option<u32>, bool, Option<u32>)>,
    /// MIMESupport (0 never, 1 S/MIME only, 2 always).
    pub mime_support: u8,
}

impl Options {
    fn parse(o: &Element) -> Options {
        let body = body::parse_prefs(o);
        Options {
            filter: o
                .child_text("FilterType")
                .and_then(|f| f.trim().parse().ok())
                .unwrap_or(0),
            body_raw: body
                .iter()
                .map(|p| (p.kind, p.truncation, p.all_or_none, p.preview))
                .collect(),
            body,
            mime_support: o
                .child_text("MIMESupport")
                .and_then(|f| f.trim().parse().ok())
                .unwrap_or(0),
        }
    }

    /// Restore `body` after a round trip through the cache.
    pub fn restore(&mut self) {
        self.body = self
            .body_raw
            .iter()
            .map(|&(kind, truncation, all_or_none, preview)| BodyPref {
                kind,
                truncation,
                all_or_none,
                preview,
            })
            .collect();
    }

    /// The body preference to honour (MIME when the client wants MIME for everything).
    pub fn body_pref(&self) -> BodyPref {
        if self.mime_support == 2 {
            if let Some(p) = self.body.iter().find(|p| p.kind == body::kind::MIME) {
                return *p;
            }
        }
        body::choose(&self.body)
    }
}

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// Create an item.
    Add {
        /// The client's temporary id.
        client_id: String,
        /// The item.
        data: Element,
    },
    /// Change an item.
    Change {
        /// Which.
        server_id: String,
        /// What.
        data: Element,
    },
    /// Delete an item.
    Delete {
        /// Which.
        server_id: String,
    },
    /// Send an item whole.
    Fetch {
        /// Which.
        server_id: String,
    },
}

/// One collection of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// The client's sync key.
    pub sync_key: String,
    /// The folder (short ServerId).
    pub id: String,
    /// Whether the client wants server changes.
    pub get_changes: bool,
    /// Deletes become moves to Deleted Items.
    pub deletes_as_moves: bool,
    /// Most changes per answer.
    pub window: u32,
    /// Options.
    pub options: Options,
    /// Client commands (not cached).
    #[serde(skip)]
    pub commands: Vec<ClientCommand>,
}

/// The whole request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Collections.
    pub collections: Vec<Collection>,
    /// Wait, in minutes (1–59).
    pub wait: Option<u32>,
    /// HeartbeatInterval, in seconds (60–3540).
    pub heartbeat: Option<u32>,
    /// Partial: the collections add to the cached request.
    pub partial: bool,
}

/// A request the server cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

fn flag(e: Option<&Element>, default: bool) -> bool {
    match e.and_then(|e| e.text()).map(str::trim) {
        None => default,
        Some("") | Some("1") => true,
        Some(_) => false,
    }
}

/// Parse a Sync document.
pub fn parse(doc: &Element) -> Result<SyncRequest, Invalid> {
    let top_window = doc
        .child_text("WindowSize")
        .and_then(|w| w.trim().parse::<u32>().ok());
    let mut req = SyncRequest {
        collections: Vec::new(),
        wait: doc.child_text("Wait").and_then(|w| w.trim().parse().ok()),
        heartbeat: doc
            .child_text("HeartbeatInterval")
            .and_then(|w| w.trim().parse().ok()),
        partial: doc.child_tag(a::Partial).is_some(),
    };
    if doc.child_tag(a::Wait).is_some() && req.wait.is_none()
        || doc.child_tag(a::HeartbeatInterval).is_some() && req.heartbeat.is_none()
    {
        return Err(Invalid("Wait/HeartbeatInterval"));
    }
    let Some(cols) = doc.child_tag(a::Collections) else {
        return Ok(req);
    };
    for c in cols.children_tagged(a::Collection) {
        if req.collections.len() >= MAX_COLLECTIONS {
            return Err(Invalid("too many collections"));
        }
        let sync_key = c
            .child_text("SyncKey")
            .ok_or(Invalid("SyncKey"))?
            .trim()
            .to_string();
        let id = c
            .child_text("CollectionId")
            .ok_or(Invalid("CollectionId"))?
            .trim()
            .to_string();
        let window = c
            .child_text("WindowSize")
            .and_then(|w| w.trim().parse::<u32>().ok())
            .or(top_window)
            .unwrap_or(DEFAULT_WINDOW)
            .clamp(1, MAX_WINDOW);
        // Several Options may come (one per class, e.g. SMS); take the mail/default one.
        let options = c
            .children_tagged(a::Options)
            .find(|o| matches!(o.child_text("Class"), None | Some("Email")))
            .map(Options::parse)
            .unwrap_or_default();
        let mut commands = Vec::new();
        if let Some(cmds) = c.child_tag(a::Commands) {
            for cmd in cmds.elements() {
                if commands.len() >= MAX_COMMANDS {
                    return Err(Invalid("too many commands"));
                }
                let sid = || {
                    cmd.child_text("ServerId")
                        .map(|s| s.trim().to_string())
                        .ok_or(Invalid("ServerId"))
                };
                let data = || {
                    cmd.child_tag(a::ApplicationData)
                        .cloned()
                        .ok_or(Invalid("ApplicationData"))
                };
                commands.push(match cmd.tag {
                    t if t == a::Add => ClientCommand::Add {
                        client_id: cmd
                            .child_text("ClientId")
                            .map(|s| s.trim().to_string())
                            .ok_or(Invalid("ClientId"))?,
                        data: data()?,
                    },
                    t if t == a::Change => ClientCommand::Change {
                        server_id: sid()?,
                        data: data()?,
                    },
                    t if t == a::Delete => ClientCommand::Delete { server_id: sid()? },
                    t if t == a::Fetch => ClientCommand::Fetch { server_id: sid()? },
                    _ => return Err(Invalid("unknown command")),
                });
            }
        }
        req.collections.push(Collection {
            get_changes: flag(c.child_tag(a::GetChanges), sync_key != "0"),
            deletes_as_moves: flag(c.child_tag(a::DeletesAsMoves), true),
            sync_key,
            id,
            window,
            options,
            commands,
        });
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_wbxml::{element, tags::airsyncbase as asb};

    #[test]
    fn parses_a_typical_request() {
        let doc = element!(a::Sync [
            element!(a::Collections [element!(a::Collection [
                element!(a::SyncKey = "abc"),
                element!(a::CollectionId = "1"),
                element!(a::DeletesAsMoves = "0"),
                element!(a::GetChanges),
                element!(a::WindowSize = "9999"),
                element!(a::Options [
                    element!(a::FilterType = "3"),
                    element!(asb::BodyPreference [element!(asb::Type = "2"), element!(asb::TruncationSize = "5000")]),
                ]),
                element!(a::Commands [
                    element!(a::Change [element!(a::ServerId = "i1"), element!(a::ApplicationData)]),
                    element!(a::Delete [element!(a::ServerId = "i2")]),
                    element!(a::Fetch [element!(a::ServerId = "i3")]),
                ]),
            ])]),
            element!(a::HeartbeatInterval = "600"),
        ]);
        let r = parse(&doc).unwrap();
        let c = &r.collections[0];
        assert_eq!(c.window, MAX_WINDOW);
        assert!(!c.deletes_as_moves && c.get_changes);
        assert_eq!(c.options.filter, 3);
        assert_eq!(c.options.body_pref().kind, 2);
        assert_eq!(c.commands.len(), 3);
        assert_eq!(r.heartbeat, Some(600));
        let zero = element!(
            a::Sync[element!(
                a::Collections[element!(a::Collection [
                    element!(a::SyncKey = "0"), element!(a::CollectionId = "1"),
                ])]
            )]
        );
        assert!(!parse(&zero).unwrap().collections[0].get_changes);
        let bad = element!(
            a::Sync[element!(a::Collections[element!(a::Collection[element!(a::SyncKey = "0")])])]
        );
        assert_eq!(parse(&bad).unwrap_err(), Invalid("CollectionId"));
        let bad = element!(a::Sync[element!(a::Wait = "soon")]);
        assert!(parse(&bad).is_err());
    }
}
