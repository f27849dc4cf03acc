//! Gateway API durations (`250ms`, `1h30m`): the CRD's pattern and Go's `time.ParseDuration` values.

use std::time::Duration;

/// The CRD pattern for a Gateway API Duration, quoted in errors.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// Parses a Gateway API duration: one to four `<1-5 digits><h|m|s|ms>` parts, summed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: must match {DURATION_PATTERN} (for example 250ms, 2s, 1m30s)"
        )
    };
    let bytes = text.as_bytes();
    let (mut i, mut parts, mut total) = (0, 0, Duration::ZERO);
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[digits_start..i];
        if digits.is_empty() || digits.len() > 5 {
            return Err(invalid());
        }
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        let unit = if text[i..].starts_with("ms") {
            i += 2;
            Duration::from_millis(1)
        } else {
            let unit = match bytes.get(i) {
                Some(b'h') => Duration::from_secs(3600),
                Some(b'm') => Duration::from_secs(60),
                Some(b's') => Duration::from_secs(1),
                _ => return Err(invalid()),
            };
            i += 1;
            unit
        };
        total += unit * u32::try_from(n).map_err(|_| invalid())?;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(invalid());
    }
    Ok(total)
}

/// Formats a duration as Go's `time.Duration.String()` does (`1m30s`, `250ms`, `0s`), the form
/// Envoy Gateway writes back.
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    if d < Duration::from_secs(1) {
        let nanos = d.as_nanos();
        return if nanos % 1_000_000 == 0 {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            format!("{}µs", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let frac = d.subsec_nanos();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let frac = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gateway_api_durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1m30s500ms"),
            Ok(Duration::from_millis(90_500))
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_the_crd_pattern_rejects() {
        for bad in [
            "",
            "5",
            "1.5s",
            "22mib",
            "100000s",
            "1h1m1s1ms1s",
            "-1s",
            "1d",
            "1us",
            " 1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("22mib").unwrap_err().contains("must match"));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_go_duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(format_go_duration(Duration::from_millis(5400)), "5.4s");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
