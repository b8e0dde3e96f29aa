//! Value parsers for flags: each accepts only its documented range and
//! refuses anything else with one sentence that quotes the value, before
//! anything starts.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// A duration flag's value, read by [`nea::duration::parse`] and shown as
/// [`nea::duration::written`] writes it (`10s`, `250ms`), so that clap can
/// show a default taken from a `Duration` constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl fmt::Display for DurationArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&nea::duration::written(self.0))
    }
}

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        nea::duration::parse(text)
            .map(Self)
            .map_err(|err| err.to_string())
    }
}

/// A value parser for a duration flag that accepts only `range`.
pub fn duration_within(
    range: RangeInclusive<Duration>,
) -> impl Fn(&str) -> Result<DurationArg, String> + Clone + Send + Sync + 'static {
    move |text| {
        let duration = nea::duration::parse(text).map_err(|err| err.to_string())?;
        if range.contains(&duration) {
            Ok(DurationArg(duration))
        } else {
            Err(format!(
                "'{text}' is outside {} to {}",
                DurationArg(*range.start()),
                DurationArg(*range.end())
            ))
        }
    }
}

/// A value parser for a whole-number flag that accepts only `range`.
pub fn count_within(
    range: RangeInclusive<usize>,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A value parser for a decimal flag that accepts only `range` (never NaN
/// or an infinity).
pub fn number_within(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<f64>() {
        Ok(x) if range.contains(&x) => Ok(x),
        _ => Err(format!(
            "'{text}' is not a number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A value parser for an address to listen on: an IP address, and a
/// sentence that says so for a host name.
pub fn listen_address(text: &str) -> Result<std::net::IpAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "'{text}' is not an IP address; give the address to listen on, \
             such as 127.0.0.1, 0.0.0.0 or ::"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_as_they_are_written() {
        for (duration, text) in [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_nanos(1_500), "0.0000015s"),
        ] {
            assert_eq!(DurationArg(duration).to_string(), text);
            assert_eq!(text.parse(), Ok(DurationArg(duration)));
        }
        assert_eq!(DurationArg(Duration::ZERO).to_string(), "0s");
        assert_eq!(
            "abc".parse::<DurationArg>(),
            Err("'abc' is not a duration (use e.g. 250ms, 1.5s, 2m, 1h or 10)".to_owned())
        );
    }

    #[test]
    fn ranged_flags_accept_their_bounds_only() {
        let count = count_within(1..=100);
        assert_eq!(count("1"), Ok(1));
        assert_eq!(count("100"), Ok(100));
        for bad in ["0", "101", "-3", "many", "18446744073709551616", ""] {
            let err = count(bad).expect_err(bad);
            assert_eq!(err, format!("'{bad}' is not a whole number from 1 to 100"));
        }
        let number = number_within(0.5..=10.0);
        assert_eq!(number("0.5"), Ok(0.5));
        assert_eq!(number("10"), Ok(10.0));
        for bad in ["0.49", "10.01", "NaN", "inf", "-inf", "x"] {
            assert!(number(bad).is_err(), "{bad}");
        }
        let duration = duration_within(Duration::from_millis(1)..=Duration::from_secs(60));
        assert_eq!(duration("1ms"), Ok(DurationArg(Duration::from_millis(1))));
        assert_eq!(duration("1m"), Ok(DurationArg(Duration::from_secs(60))));
        assert_eq!(
            duration("61s"),
            Err("'61s' is outside 1ms to 1m".to_owned())
        );
        assert!(duration("0.5ms").is_err());
        assert_eq!(
            duration("0"),
            Err("'0' must be a positive duration".to_owned())
        );
    }

    #[test]
    fn a_listen_address_is_an_ip_address_not_a_host_name() {
        assert_eq!(
            listen_address("127.0.0.1"),
            Ok(std::net::IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            listen_address("::"),
            Ok(std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED))
        );
        let err = listen_address("localhost").expect_err("a host name");
        assert!(
            err.starts_with("'localhost' is not an IP address;"),
            "{err}"
        );
    }
}
