//! Durations as settings are written: `250ms`, `1.5s`, `2m`, `1h`, or a
//! bare number of seconds (`10`).
//!
//! Parsing is exact: the digits are read as integers and scaled to
//! nanoseconds with checked arithmetic, so `5108087.6` is 5108087.6 s to the
//! nanosecond and what [`written`] shows parses back to the same value.
//! (A float-based parser was one nanosecond off for such values.) Every
//! duration the programs take is a period or a deadline, so zero is
//! refused, and so is anything beyond [`LONGEST`]: a value that large is a
//! mistake, and every range in the crate root ends far below it.

use std::time::Duration;

/// The longest duration accepted: a billion seconds (about 31 years).
pub const LONGEST: Duration = Duration::from_secs(1_000_000_000);

/// Why a text is not a duration; its `Display` is one sentence that quotes
/// the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number with an optional unit.
    #[error("'{0}' is not a duration (use e.g. 250ms, 1.5s, 2m, 1h or 10)")]
    NotADuration(String),
    /// Zero, or beyond [`LONGEST`].
    #[error("'{0}' must be a positive duration")]
    OutOfRange(String),
    /// More precise than a nanosecond, and shorter than one.
    #[error("'{0}' is shorter than a nanosecond")]
    BelowANanosecond(String),
}

/// Nanoseconds per unit, by suffix; a bare number is seconds.
const UNITS: [(&str, u128); 4] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration as the module doc says; white space around the number
/// and the unit is ignored. Digits beyond the nanosecond are dropped
/// (rounded down), so `0.0000000015s` is one nanosecond.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let (number, per_unit) = UNITS
        .iter()
        .find_map(|(suffix, nanos)| Some((trimmed.strip_suffix(suffix)?, *nanos)))
        .unwrap_or((trimmed, 1_000_000_000));
    let not_a_duration = || DurationError::NotADuration(trimmed.to_owned());
    let nanos = scaled(number.trim(), per_unit).ok_or_else(not_a_duration)?;
    let longest = LONGEST.as_nanos();
    match nanos {
        Scaled::Exact(0) if is_zero(number) => Err(DurationError::OutOfRange(trimmed.to_owned())),
        Scaled::Exact(0) => Err(DurationError::BelowANanosecond(trimmed.to_owned())),
        Scaled::Exact(n) if n <= longest => Ok(nanos_to_duration(n)),
        Scaled::Exact(_) | Scaled::Overflow => Err(DurationError::OutOfRange(trimmed.to_owned())),
    }
}

/// A decimal number times a unit, in whole nanoseconds.
enum Scaled {
    Exact(u128),
    /// Too large for any duration accepted.
    Overflow,
}

/// `number` (digits, an optional `.` and more digits; no sign, no
/// exponent) times `per_unit` nanoseconds; `None` if it is not such a
/// number.
fn scaled(number: &str, per_unit: u128) -> Option<Scaled> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = match nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
        {
            Some(n) if n <= LONGEST.as_nanos() => n,
            _ => return Some(Scaled::Overflow),
        };
    }
    let Some(mut nanos) = nanos.checked_mul(per_unit) else {
        return Some(Scaled::Overflow);
    };
    // Each fractional digit is worth a tenth of the one before, in whole
    // nanoseconds of this unit; digits worth less than a nanosecond drop.
    let mut place = per_unit;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos += u128::from(digit - b'0') * place;
    }
    Some(Scaled::Exact(nanos))
}

/// Whether `number` is written as zero (`0`, `0.000`), as opposed to a
/// fraction too small to count.
fn is_zero(number: &str) -> bool {
    number.trim().bytes().all(|b| b == b'0' || b == b'.')
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, which fits.
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, subsec)
}

/// `duration` as a person writes it, in the largest unit that shows it
/// exactly: `10s`, `2m`, `24h`, `250ms`, or seconds with a fraction
/// (`0.0000015s`). [`parse`] reads it back to the same duration.
pub fn written(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        match duration.as_secs() {
            s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
            s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        let fraction = format!("{:09}", duration.subsec_nanos());
        format!("{}.{}s", duration.as_secs(), fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_are_accepted() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse(" 3 s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5."), Ok(Duration::from_secs(5)));
        assert_eq!(parse("0.25h"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1.5ms"), Ok(Duration::from_micros(1500)));
    }

    #[test]
    fn a_value_with_many_digits_is_exact_to_the_nanosecond() {
        // A float-based parser read this as 5108087.600000001 s.
        let duration = parse("5108087.6").expect("a duration");
        assert_eq!(duration, Duration::new(5_108_087, 600_000_000));
        assert_eq!(written(duration), "5108087600ms");
        assert_eq!(parse("5108087600ms"), Ok(duration));
        assert_eq!(parse("0.123456789"), Ok(Duration::new(0, 123_456_789)));
        assert_eq!(parse("0.0000000019"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn nonsense_is_refused_with_a_sentence_quoting_it() {
        for bad in [
            "", "abc", "10x", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", ".", "s", "1 0",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains('\''), "{bad}: {err}");
        }
        assert_eq!(
            parse("0").map_err(|e| e.to_string()),
            Err("'0' must be a positive duration".to_owned())
        );
        assert_eq!(
            parse("0ms").map_err(|e| e.to_string()),
            Err("'0ms' must be a positive duration".to_owned())
        );
        assert_eq!(
            parse("0.000s").map_err(|e| e.to_string()),
            Err("'0.000s' must be a positive duration".to_owned())
        );
        assert_eq!(
            parse("0.0000000001").map_err(|e| e.to_string()),
            Err("'0.0000000001' is shorter than a nanosecond".to_owned())
        );
    }

    #[test]
    fn the_longest_duration_accepted_is_a_billion_seconds() {
        assert_eq!(parse("1000000000"), Ok(LONGEST));
        for too_long in [
            "1000000001",
            "16666667m",
            "1000000000.000000001",
            "99999999999999999999999999999999999999999999",
        ] {
            assert_eq!(
                parse(too_long),
                Err(DurationError::OutOfRange(too_long.to_owned()))
            );
        }
    }

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (duration, text) in [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_nanos(1_500), "0.0000015s"),
            (Duration::new(3, 1), "3.000000001s"),
        ] {
            assert_eq!(written(duration), text);
            assert_eq!(parse(text), Ok(duration), "{text}");
        }
        assert_eq!(written(Duration::ZERO), "0s");
    }
}
