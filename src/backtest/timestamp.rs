//! Timestamps in backtest CSVs: `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339
//! (`2024-05-01T12:00:00Z`, `…+02:00`, fractional seconds), or Unix
//! seconds (integer or fractional). Parsed without a date library.

/// Seconds since the Unix epoch, or a message saying what was expected.
pub fn parse(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(secs) = t.parse::<f64>()
        && secs.is_finite()
    {
        // Past the year 5000: milliseconds (or finer) written where
        // seconds were meant.
        if secs.abs() >= MILLIS_FROM {
            return Err(format!(
                "`{t}` is too large for a timestamp in Unix seconds (after the year 5000); divide milliseconds by 1000"
            ));
        }
        return Ok(secs);
    }
    parse_calendar(t).ok_or_else(|| {
        format!(
            "`{t}` is not a timestamp; write YYYY-MM-DD HH:MM:SS (UTC), RFC 3339 such as 2024-05-01T12:00:00Z, or Unix seconds"
        )
    })
}

/// Unix seconds at and beyond which a number is taken to be in smaller
/// units (1e11 s is in the year 5138; 1e11 ms is 1973).
const MILLIS_FROM: f64 = 1e11;

/// Days in `month` of `year` (proleptic Gregorian).
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_calendar(t: &str) -> Option<f64> {
    // Every accepted form is ASCII (so byte offsets below are characters).
    if !t.is_ascii() {
        return None;
    }
    let (date, rest) = t.split_at(t.find(['T', 't', ' '])?);
    let rest = &rest[1..];
    let mut parts = date.split('-');
    let year = number(parts.next()?)?;
    let month = number(parts.next()?)?;
    let day = number(parts.next()?)?;
    if parts.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    // Offset: Z, +hh:mm, -hh:mm, or none (UTC).
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']).filter(|p| *p >= 8) {
        let (c, o) = rest.split_at(pos);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (h, m) = o[1..]
            .split_once(':')
            .unwrap_or((&o[1..3.min(o.len())], &o[3.min(o.len())..]));
        (c, sign * (number(h)? * 3600 + number(m).unwrap_or(0) * 60))
    } else {
        (rest, 0)
    };
    let mut hms = clock.split(':');
    let hour = number(hms.next()?)?;
    let minute = number(hms.next()?)?;
    let second_text = hms.next().unwrap_or("0");
    if hms.next().is_some() || hour > 23 || minute > 59 {
        return None;
    }
    let (whole, fraction) = match second_text.split_once('.') {
        Some((w, f)) => (number(w)?, format!("0.{f}").parse::<f64>().ok()?),
        None => (number(second_text)?, 0.0),
    };
    if whole > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + whole - offset_secs;
    Some(secs as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_form() {
        assert_eq!(parse("2014-04-10 00:02:00").unwrap(), 1_397_088_120.0);
        assert_eq!(parse("2014-04-10T00:02:00Z").unwrap(), 1_397_088_120.0);
        assert_eq!(parse("2014-04-10T02:02:00+02:00").unwrap(), 1_397_088_120.0);
        assert_eq!(parse("2014-04-09T23:02:00-01:00").unwrap(), 1_397_088_120.0);
        assert_eq!(parse("2014-04-10T00:02:00.5Z").unwrap(), 1_397_088_120.5);
        assert_eq!(parse("1397088120").unwrap(), 1_397_088_120.0);
        assert_eq!(parse("1397088120.25").unwrap(), 1_397_088_120.25);
        assert_eq!(parse("1970-01-01 00:00:00").unwrap(), 0.0);
        assert_eq!(parse("2000-03-01 00:00:00").unwrap(), 951_868_800.0);
        assert_eq!(parse("2024-02-29 00:00:00").unwrap(), 1_709_164_800.0);
    }

    #[test]
    fn errors_say_what_is_expected() {
        for bad in [
            "",
            "yesterday",
            "2014-13-01 00:00:00",
            "2014-04-10 25:00:00",
            "2024-02-30 00:00:00",
            "2023-02-29 00:00:00",
            "2024-04-31T00:00:00Z",
            "2024-05-01T12:00:00+0\u{e9}",
            "2024-05-01T12:00:00+\u{e9}",
            "1700000000000",
            "NaN",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("timestamp"), "{bad}: {err}");
        }
    }
}
