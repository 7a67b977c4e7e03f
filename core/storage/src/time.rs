//! Timestamps.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The current time in UTC, truncated to whole microseconds.
///
/// PostgreSQL stores timestamps with microsecond precision while SQLite keeps whatever text it
/// is given; truncating before writing makes both backends return exactly the value that was
/// stored, so a struct returned by an insert equals the same row read back later.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}
