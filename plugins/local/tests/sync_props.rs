//! Property tests of change tracking on the mock host: random interleavings of adds, content
//! changes, flag changes, moves, deletes and syncs (random page sizes, replays of older states,
//! several clients per folder). After every sync that reports no more changes, each client's
//! replica must equal the folder's contents; no page may hold an item twice, add a known item,
//! or change or delete an unknown one (the replica's `apply` checks that).

mod common;

use std::collections::BTreeMap;

use common::{alice, Env, Replica};
use proptest::prelude::*;
use switchboard_local::keys::Mailbox;
use switchboard_local::{changes, Local};
use switchboard_sdk::{FolderKind, ItemSummary, MailConnector};

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Replace(usize),
    Flag(usize, bool),
    Move(usize, usize),
    Delete(usize),
    Sync(usize, u32),
    Replay(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize).prop_map(Op::Add),
        1 => any::<usize>().prop_map(Op::Replace),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Flag(i, b)),
        1 => (any::<usize>(), 0..2usize).prop_map(|(i, f)| Op::Move(i, f)),
        1 => any::<usize>().prop_map(Op::Delete),
        3 => (0..4usize, 1..5u32).prop_map(|(c, m)| Op::Sync(c, m)),
        1 => (0..4usize, 0..4usize).prop_map(|(c, b)| Op::Replay(c, b)),
    ]
}

/// The folder's live items, read straight from the item records (not through sync).
fn server(env: &Env, folder: &str) -> BTreeMap<String, ItemSummary> {
    env.run(|| {
        let mb = Mailbox::of(&alice()).unwrap();
        changes::summaries(&mb, folder).unwrap()
    })
    .into_iter()
    .map(|s| (s.id.clone(), s))
    .collect()
}

struct Client {
    folder: usize,
    history: Vec<Replica>,
}

fn run(ops: Vec<Op>) {
    let env = Env::new();
    let a = alice();
    let user = env
        .run(|| Local::create_folder(&a, "", "Archive", FolderKind::UserMail))
        .unwrap();
    let folders = ["inbox".to_string(), user.id];
    // Two clients per folder (say a phone and Outlook), each with its past states.
    let mut clients: Vec<Client> = (0..4)
        .map(|i| Client {
            folder: i % 2,
            history: vec![Replica::default()],
        })
        .collect();
    let mut live: Vec<String> = Vec::new();
    let mut n = 0;
    for op in ops {
        match op {
            Op::Add(f) => {
                n += 1;
                let msg = format!("Subject: message {n}\r\n\r\nbody {n}\r\n");
                let s = env.create(&a, &folders[f], msg.as_bytes()).unwrap();
                live.push(s.id);
            }
            Op::Replace(i) if !live.is_empty() => {
                n += 1;
                let id = &live[i % live.len()];
                env.replace(&a, id, format!("Subject: edit {n}\r\n\r\n").as_bytes())
                    .unwrap();
            }
            Op::Flag(i, v) if !live.is_empty() => {
                let id = &live[i % live.len()];
                env.run(|| Local::set_flags(&a, id, Some(v), Some(!v)))
                    .unwrap();
            }
            Op::Move(i, f) if !live.is_empty() => {
                let k = i % live.len();
                let new = env
                    .run(|| Local::move_item(&a, &live[k], &folders[f]))
                    .unwrap();
                live[k] = new;
            }
            Op::Delete(i) if !live.is_empty() => {
                let id = live.remove(i % live.len());
                env.run(|| Local::delete_item(&a, &id)).unwrap();
            }
            Op::Sync(c, max) => {
                let client = &mut clients[c];
                let folder = &folders[client.folder];
                let mut r = client.history.last().cloned().unwrap_or_default();
                let more = r.sync_page(&env, &a, folder, max);
                if !more {
                    assert_eq!(
                        r.items,
                        server(&env, folder),
                        "client {c} after a full sync"
                    );
                }
                client.history.push(r);
            }
            Op::Replay(c, back) => {
                // The client lost the last answers: it goes back to an older state and syncs
                // from there to the end.
                let client = &mut clients[c];
                let keep = client.history.len().saturating_sub(back).max(1);
                client.history.truncate(keep);
                let folder = &folders[client.folder];
                let mut r = client.history.last().cloned().unwrap_or_default();
                r.sync_to_end(&env, &a, folder, 3);
                assert_eq!(r.items, server(&env, folder), "client {c} after a replay");
                client.history.push(r);
            }
            _ => {}
        }
    }
    // Every client catches up; the two folders hold exactly the live items.
    for client in &mut clients {
        let folder = &folders[client.folder];
        let mut r = client.history.last().cloned().unwrap_or_default();
        r.sync_to_end(&env, &a, folder, 2);
        assert_eq!(r.items, server(&env, folder));
        // Asking again from the final state: nothing new.
        let page = env
            .run(|| Local::sync(&a, folder, r.state.as_deref(), 10))
            .unwrap();
        assert!(page.changes.is_empty() && !page.more, "{page:?}");
        assert_eq!(Some(page.state), r.state, "an idle folder keeps its state");
    }
    let mut all: Vec<String> = folders
        .iter()
        .flat_map(|f| server(&env, f).into_keys())
        .collect();
    all.sort();
    live.sort();
    assert_eq!(all, live);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replicas_built_from_sync_pages_match_the_folders(ops in prop::collection::vec(op(), 1..80)) {
        run(ops);
    }
}

#[test]
fn a_long_history_pages_correctly() {
    // A deterministic long run: many writes between syncs, tiny pages.
    let mut ops = Vec::new();
    for i in 0..200 {
        ops.push(Op::Add(i % 2));
        if i % 3 == 0 {
            ops.push(Op::Flag(i * 7, i % 2 == 0));
        }
        if i % 5 == 0 {
            ops.push(Op::Move(i * 11, (i / 5) % 2));
        }
        if i % 7 == 0 {
            ops.push(Op::Delete(i * 13));
        }
        if i % 17 == 0 {
            ops.push(Op::Sync(i % 4, 1 + (i as u32 % 4)));
        }
        if i % 41 == 0 {
            ops.push(Op::Replay(i % 4, 2));
        }
    }
    run(ops);
}
