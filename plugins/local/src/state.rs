//! Sync state tokens: `"<seq>-<check>"`, where `seq` is a position in the folder's change
//! counter and `check` is 8 hex digits of a hash over the mailbox, the folder and `seq`. The
//! check is no secret (tokens are opaque, not authenticated); it makes a token typed by hand,
//! mangled in transit or taken from another folder fail cleanly as [`TokenError`] instead of
//! silently meaning something else. Sans-IO.

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `<seq>-<check>`.
    #[error("sync state {0:?} is not a state this store issued")]
    Malformed(String),
    /// Well-formed, but the check does not match this folder.
    #[error("sync state {0:?} does not belong to this folder")]
    Foreign(String),
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff; // separator, so ("ab","c") and ("a","bc") differ
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn check(mailbox: &str, folder: &str, seq: u64) -> String {
    let h = fnv1a(&[mailbox.as_bytes(), folder.as_bytes(), &seq.to_be_bytes()]);
    format!("{:08x}", h >> 32)
}

/// The token for position `seq` of `folder` in `mailbox`.
pub fn encode(mailbox: &str, folder: &str, seq: u64) -> String {
    format!("{seq}-{}", check(mailbox, folder, seq))
}

/// The position a token stands for.
pub fn decode(mailbox: &str, folder: &str, token: &str) -> Result<u64, TokenError> {
    let malformed = || TokenError::Malformed(token.chars().take(64).collect());
    let (seq, sum) = token.split_once('-').ok_or_else(malformed)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) || seq.len() > 20 {
        return Err(malformed());
    }
    if (seq.len() > 1 && seq.starts_with('0')) || sum.len() != 8 {
        return Err(malformed());
    }
    let seq: u64 = seq.parse().map_err(|_| malformed())?;
    if check(mailbox, folder, seq) != sum {
        return Err(TokenError::Foreign(token.chars().take(64).collect()));
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_refusals() {
        let t = encode("alice@example.com", "inbox", 42);
        assert_eq!(decode("alice@example.com", "inbox", &t), Ok(42));
        assert!(matches!(
            decode("alice@example.com", "drafts", &t),
            Err(TokenError::Foreign(_))
        ));
        assert!(matches!(
            decode("bob@example.com", "inbox", &t),
            Err(TokenError::Foreign(_))
        ));
        for bad in [
            "",
            "42",
            "-",
            "x-00000000",
            "042-00000000",
            "42-0",
            "99999999999999999999999-00000000",
            "4 2-12345678",
        ] {
            assert!(
                matches!(decode("a@b", "inbox", bad), Err(TokenError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_string_is_refused_or_round_trips(s in ".{0,40}") {
            if let Ok(seq) = decode("a@b", "f", &s) {
                prop_assert_eq!(encode("a@b", "f", seq), s);
            }
        }

        #[test]
        fn changing_the_number_breaks_the_check(seq in 0u64..1_000_000) {
            let t = encode("a@b", "f", seq);
            let (_, sum) = t.split_once('-').unwrap();
            let forged = format!("{}-{sum}", seq + 1);
            prop_assert!(decode("a@b", "f", &forged).is_err());
        }
    }
}
