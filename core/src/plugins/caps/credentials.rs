//! `credentials`: the password a request was authenticated with, for a mail connector the
//! admin lets log in to its backend as the user (`pass_password = true`) — an IMAP server
//! without a master-user login, say. The password lives only as long as the request, only
//! reaches a connector called for that same user, and is never logged or stored.

use std::sync::Arc;

use switchboard_sdk::Principal;

/// Who logged in on this request, with the password they used.
#[derive(Clone)]
pub struct UserSecret {
    who: Principal,
    password: Arc<str>,
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSecret")
            .field("who", &self.who.address())
            .field("password", &"<redacted>")
            .finish()
    }
}

impl UserSecret {
    /// `who` logged in with `password`.
    pub fn new(who: Principal, password: &str) -> UserSecret {
        UserSecret {
            who,
            password: password.into(),
        }
    }

    /// The password, when the call is about the user who logged in (never another's).
    pub fn password_for(&self, who: &Principal) -> Option<&str> {
        super::same_principal(&self.who, who).then_some(&*self.password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_the_same_user_and_never_in_debug_output() {
        let alice = Principal::parse("alice@example.com").unwrap();
        let s = UserSecret::new(alice, "pa55word");
        let same = Principal::parse("Alice@Example.COM").unwrap();
        let bob = Principal::parse("bob@example.com").unwrap();
        let other_domain = Principal::parse("alice@example.org").unwrap();
        assert_eq!(s.password_for(&same), Some("pa55word"));
        assert_eq!(s.password_for(&bob), None);
        assert_eq!(s.password_for(&other_domain), None);
        let shown = format!("{s:?}");
        assert!(shown.contains("alice@example.com"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
    }
}
