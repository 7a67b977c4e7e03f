//! The Scalix / standards connector: a `mail-connector` plugin over IMAP (and SMTP
//! submission) for Scalix and any standards-based mail store.
