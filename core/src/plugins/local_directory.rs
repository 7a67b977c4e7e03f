//! The core's own users as a directory: where no directory connector serves a domain, a
//! frontend's `directory.lookup` and `directory.search` answer from the users table, so on
//! the default install a phone's GAL search and name resolution find the other local users
//! and the SIP frontend queues offline messages for a local user who never registered.
//!
//! `authenticate` is not answered here: local passwords are checked by the core's credential
//! chain, with its throttling and audit, never through a plugin call.

use switchboard_sdk::abi::{DirectoryCall, DirectoryReply};
use switchboard_sdk::{Error, Person};
use switchboard_storage::{Storage, User};

/// Answer `call` from the users table of `storage`.
pub async fn answer(storage: &Storage, call: DirectoryCall) -> Result<DirectoryReply, Error> {
    match call {
        DirectoryCall::Lookup { who } => {
            let user = storage
                .user(&who.address())
                .await
                .map_err(|e| Error::Unavailable(format!("local users: {e}")))?;
            Ok(DirectoryReply::Person(
                user.filter(|u| !u.disabled).map(|u| person(&u)),
            ))
        }
        DirectoryCall::Search { domain, query, max } => {
            // A full scan of the domain's users: the local table is the small-install case
            // (large organisations route their domain to a directory connector).
            let users = storage
                .list_users(Some(&domain.to_ascii_lowercase()))
                .await
                .map_err(|e| Error::Unavailable(format!("local users: {e}")))?;
            let query = query.trim().to_lowercase();
            Ok(DirectoryReply::People(
                users
                    .iter()
                    .filter(|u| !u.disabled && matches(u, &query))
                    .take(max as usize)
                    .map(person)
                    .collect(),
            ))
        }
        DirectoryCall::Authenticate { who, .. } => Err(Error::Unavailable(format!(
            "no directory connector serves {}",
            who.domain
        ))),
    }
}

/// Whether the address or any word of the display name starts with `query` (how phones
/// search the GAL: "bo" finds Bob Builder), or `query` is empty.
fn matches(u: &User, query: &str) -> bool {
    if query.is_empty() || u.address.starts_with(query) {
        return true;
    }
    u.display_name.as_deref().is_some_and(|name| {
        let name = name.to_lowercase();
        name.starts_with(query) || name.split_whitespace().any(|w| w.starts_with(query))
    })
}

fn person(u: &User) -> Person {
    let local = u.address.split('@').next().unwrap_or(&u.address);
    Person {
        login: u.address.clone(),
        display_name: u.display_name.clone().unwrap_or_else(|| local.to_string()),
        email: u.address.clone(),
        phone: String::new(),
        attributes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::Principal;

    async fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
        let storage = Storage::connect(&url, 1).await.unwrap();
        storage.migrate().await.unwrap();
        for d in ["example.com", "other.example"] {
            storage.add_domain(d).await.unwrap();
        }
        storage
            .add_user("alice@example.com", "pw", Some("Alice Example"))
            .await
            .unwrap();
        storage
            .add_user("bob@example.com", "pw", Some("Bob Builder"))
            .await
            .unwrap();
        storage
            .add_user("carol@example.com", "pw", None)
            .await
            .unwrap();
        storage
            .add_user("bob@other.example", "pw", Some("Other Bob"))
            .await
            .unwrap();
        storage
            .set_disabled("carol@example.com", true)
            .await
            .unwrap();
        (dir, storage)
    }

    fn lookup(address: &str) -> DirectoryCall {
        DirectoryCall::Lookup {
            who: Principal::parse(address).unwrap(),
        }
    }

    fn search(domain: &str, query: &str, max: u32) -> DirectoryCall {
        DirectoryCall::Search {
            domain: domain.into(),
            query: query.into(),
            max,
        }
    }

    fn logins(reply: DirectoryReply) -> Vec<String> {
        match reply {
            DirectoryReply::People(p) => p.into_iter().map(|p| p.login).collect(),
            other => panic!("expected people, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lookup_finds_enabled_users_only() {
        let (_d, s) = storage().await;
        match answer(&s, lookup("Bob@Example.com")).await.unwrap() {
            DirectoryReply::Person(Some(p)) => {
                assert_eq!(p.login, "bob@example.com");
                assert_eq!(p.email, "bob@example.com");
                assert_eq!(p.display_name, "Bob Builder");
            }
            other => panic!("{other:?}"),
        }
        for nobody in ["carol@example.com", "dave@example.com"] {
            assert_eq!(
                answer(&s, lookup(nobody)).await.unwrap(),
                DirectoryReply::Person(None),
                "{nobody}"
            );
        }
    }

    #[tokio::test]
    async fn search_matches_address_and_name_words_within_the_domain() {
        let (_d, s) = storage().await;
        assert_eq!(
            logins(answer(&s, search("example.com", "bo", 10)).await.unwrap()),
            ["bob@example.com"]
        );
        assert_eq!(
            logins(
                answer(&s, search("example.com", "EXAMPLE", 10))
                    .await
                    .unwrap()
            ),
            ["alice@example.com"]
        );
        assert_eq!(
            logins(answer(&s, search("example.com", "", 1)).await.unwrap()).len(),
            1
        );
        // Disabled users and other domains stay out.
        assert!(logins(
            answer(&s, search("example.com", "carol", 10))
                .await
                .unwrap()
        )
        .is_empty());
        assert_eq!(
            logins(
                answer(&s, search("other.example", "bob", 10))
                    .await
                    .unwrap()
            ),
            ["bob@other.example"]
        );
    }

    #[tokio::test]
    async fn authenticate_is_left_to_the_credential_chain() {
        let (_d, s) = storage().await;
        let call = DirectoryCall::Authenticate {
            who: Principal::parse("bob@example.com").unwrap(),
            password: "pw".into(),
        };
        assert!(matches!(
            answer(&s, call).await,
            Err(Error::Unavailable(m)) if m == "no directory connector serves example.com"
        ));
    }
}
