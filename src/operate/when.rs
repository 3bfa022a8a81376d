//! Times and durations on the command line: a duration is `90s`, `15m`, `2h`, `7d` or a sum
//! of them (`1h30m`), or ISO 8601 as Kafka's own tool takes it (`PT1H30M`, `P7D`); a time is
//! RFC 3339 (`2026-12-01T00:00:00Z`) or a duration, meaning that long ago.

use std::time::Duration;

use anyhow::{bail, Context};

/// A duration as described in the module docs.
///
/// # Errors
/// When the text is not one.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let trimmed = text.trim();
    // ISO 8601: P[nD][T[nH][nM][nS]]; otherwise units after numbers.
    let (body, iso) = match trimmed.to_ascii_uppercase().strip_prefix('P') {
        Some(rest) => (rest.to_owned(), true),
        None => (trimmed.to_ascii_lowercase(), false),
    };
    if body.is_empty() {
        bail!("{text:?} is not a duration (e.g. 90s, 15m, 2h, 7d, 1h30m, PT2H)");
    }
    let mut total = 0u64;
    let mut number = String::new();
    let mut in_time = false;
    for c in body.chars() {
        if c == 'T' {
            in_time = true;
            continue;
        }
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .with_context(|| format!("{text:?} is not a duration: a unit without a number"))?;
        number.clear();
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            // ISO months (`P1M`) are not durations of fixed length; minutes need the `T`.
            'm' if iso && !in_time => bail!("{text:?}: months are not a fixed duration"),
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            other => bail!("{text:?} is not a duration: unknown unit {other:?}"),
        };
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .with_context(|| format!("{text:?} is too long"))?;
    }
    if !number.is_empty() {
        bail!("{text:?} is not a duration: {number} has no unit (s, m, h, d)");
    }
    Ok(Duration::from_secs(total))
}

/// A time as unix milliseconds: RFC 3339, or a duration before `now_ms`.
///
/// # Errors
/// When the text is neither.
pub fn parse_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time.timestamp_millis());
    }
    let ago = parse_duration(text).with_context(|| {
        format!("{text:?} is neither a time (2026-12-01T00:00:00Z) nor a duration ago (7d)")
    })?;
    Ok(now_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_read_as_people_and_kafka_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_duration("PT1H30M").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("P1DT2H").unwrap(),
            Duration::from_secs(93_600)
        );
        for bad in ["", "5", "h", "3x", "P1M", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_time_is_rfc3339_or_a_duration_ago() {
        assert_eq!(
            parse_time("2026-12-01T00:00:00Z", 0).unwrap(),
            1_796_083_200_000
        );
        assert_eq!(parse_time("2m", 1_000_000).unwrap(), 880_000);
        assert!(parse_time("yesterday", 0).is_err());
    }
}
