//! Date-times as ActiveSync writes them: `2009-11-12T00:45:06.000Z` (Email, Sync) and
//! `20091112T004506Z` (Calendar), from and to milliseconds since the Unix epoch. Pure
//! arithmetic (the civil-from-days algorithm), no time zone database.

/// (year, month, day) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m as u32, d as u32)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, milli)
}

/// `2009-11-12T00:45:06.000Z`.
pub fn iso(ms: i64) -> String {
    let (y, m, d, h, mi, s, milli) = parts(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `20091112T004506Z`.
pub fn compact(ms: i64) -> String {
    let (y, m, d, h, mi, s, _) = parts(ms);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `Mon, 30 Nov 2026 19:05:00 +0000` (RFC 5322 `Date:`).
pub fn rfc5322(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, h, mi, s, _) = parts(ms);
    let dow = DAYS[ms.div_euclid(86_400_000).rem_euclid(7) as usize];
    let mon = MONTHS[(m as usize).clamp(1, 12) - 1];
    format!("{dow}, {d} {mon} {y} {h:02}:{mi:02}:{s:02} +0000")
}

/// Parse either form (and `YYYYMMDD` dates); `None` when malformed.
pub fn parse(s: &str) -> Option<i64> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 || !s.is_ascii() {
        return None;
    }
    let num = |a: usize, b: usize| digits.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let y = num(0, 4)?;
    let mo = u32::try_from(num(4, 6)?).ok()?;
    let d = u32::try_from(num(6, 8)?).ok()?;
    let h = num(8, 10).unwrap_or(0);
    let mi = num(10, 12).unwrap_or(0);
    let sec = num(12, 14).unwrap_or(0);
    let milli = num(14, 17).unwrap_or(0);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + milli)
}

/// Parse an RFC 5322 date (`Tue, 14 Nov 2023 22:13:20 +0100`); `None` when malformed.
pub fn parse_rfc5322(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.split_once(',').map_or(s, |(_, rest)| rest);
    let mut parts = s.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let mon = parts.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| mon.starts_with(m))? as u32 + 1;
    let mut year: i64 = parts.next()?.parse().ok()?;
    if (0..100).contains(&year) {
        year += if year < 50 { 2000 } else { 1900 };
    }
    // Any other year is someone else's bytes, not a date (and would overflow the arithmetic).
    if !(1..=9999).contains(&year) {
        return None;
    }
    // Unsigned: `-5:00` is not a time.
    let hms: Vec<i64> = parts
        .next()?
        .split(':')
        .map(|x| x.parse::<u32>().ok().map(i64::from))
        .collect::<Option<Vec<_>>>()?;
    let (h, mi, sec) = (
        *hms.first()?,
        *hms.get(1)?,
        hms.get(2).copied().unwrap_or(0),
    );
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let zone = parts.next().unwrap_or("+0000");
    let offset = match zone.as_bytes().first() {
        Some(b'+' | b'-') if zone.len() >= 5 => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hh = i64::from(zone.get(1..3)?.parse::<u8>().ok()?);
            let mm = i64::from(zone.get(3..5)?.parse::<u8>().ok()?);
            sign * (hh * 60 + mm)
        }
        _ => 0,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset * 60) * 1000)
}

/// Now, in milliseconds since the epoch (0 if the clock is unavailable).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 2009-11-12T00:45:06Z, the MS-ASEMAIL example date.
        let ms = 1_257_986_706_000;
        assert_eq!(iso(ms), "2009-11-12T00:45:06.000Z");
        assert_eq!(compact(ms), "20091112T004506Z");
        assert_eq!(parse("2009-11-12T00:45:06.000Z"), Some(ms));
        assert_eq!(parse("20091112T004506Z"), Some(ms));
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse("2009-13-01"), None);
        assert_eq!(parse("garbage"), None);
        assert_eq!(iso(-1000), "1969-12-31T23:59:59.000Z");
        assert_eq!(rfc5322(ms), "Thu, 12 Nov 2009 00:45:06 +0000");
        assert_eq!(parse_rfc5322("Thu, 12 Nov 2009 01:45:06 +0100"), Some(ms));
        assert_eq!(parse_rfc5322("12 Nov 09 00:45:06 GMT"), Some(ms));
        assert_eq!(parse_rfc5322("garbage"), None);
        // Years that overflowed the arithmetic (panic in debug builds), signed fields.
        assert_eq!(
            parse_rfc5322("Thu, 12 Nov 9223372036854775807 01:45:06 +0100"),
            None
        );
        assert_eq!(
            parse_rfc5322("Thu, 12 Nov -99999999999 01:45:06 +0100"),
            None
        );
        assert_eq!(parse_rfc5322("Thu, 12 Nov 2009 -5:00:00 +0100"), None);
        assert_eq!(parse_rfc5322("Thu, 12 Nov 2009 01:45:06 +-100"), None);
    }
}
