//! The metrics an assertion can compare, their arguments and the unit each is measured in.

use std::fmt;

/// Envoy's response-flag short names (`%RESPONSE_FLAGS%`), every one `flag_rate(F)` accepts.
pub const RESPONSE_FLAGS: &[&str] = &[
    "DC", "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "URX", "NR", "DI", "FI", "RL", "UAEX",
    "RLSE", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
];

/// Metric names in the order the documentation lists them; quoted in "unknown metric" errors.
pub const METRIC_NAMES: &[&str] = &[
    "requests",
    "rps",
    "success_rate",
    "error_rate",
    "status_rate(N)",
    "status_count(N)",
    "flag_rate(F)",
    "flag_count(F)",
    "overflow_rate",
    "ratelimited_rate",
    "transport_error_rate",
    "share",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "latency_p999",
    "latency_max",
    "latency_mean",
    "stat(NAME)",
];

/// What an assertion measures over the requests in its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Number of requests.
    Requests,
    /// Requests per second of the window.
    Rps,
    /// Share of 2xx/3xx responses.
    SuccessRate,
    /// Share of everything else, transport errors included.
    ErrorRate,
    /// Share of responses with a status (or status class).
    StatusRate(StatusSelector),
    /// Count of responses with a status (or status class).
    StatusCount(StatusSelector),
    /// Share of requests whose Envoy response flag is this one.
    FlagRate(ResponseFlagName),
    /// Count of requests whose Envoy response flag is this one.
    FlagCount(ResponseFlagName),
    /// `flag_rate(UO)`: answered 503 by a circuit breaker.
    OverflowRate,
    /// `flag_rate(RL)`: answered 429 by the proxy's rate limiter.
    RatelimitedRate,
    /// Client-side failures: refused, reset, client timeout.
    TransportErrorRate,
    /// Share of the scope's requests served by the `where.backend` (and `where.replica`).
    Share,
    /// End-to-end latency statistic.
    Latency(LatencyStat),
    /// Increase of a proxy counter during the window, summed over the clusters in scope.
    Stat(String),
}

/// The unit a metric is observed in, which decides the kind of value it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A count of requests or counter increments (a plain number).
    Count,
    /// Requests per second (a plain number).
    PerSecond,
    /// A fraction from 0 to 1 (a percentage or a bare fraction).
    Fraction,
    /// A latency in seconds (a duration with a unit).
    Latency,
}

/// An HTTP status or a status class (`503`, `5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusSelector {
    /// One status code, 100..=599.
    Code(u16),
    /// A class: 1 to 5 for `1xx` to `5xx`.
    Class(u8),
}

/// One of Envoy's response-flag short names, from [`RESPONSE_FLAGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseFlagName(&'static str);

/// Which latency statistic a `latency_*` metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LatencyStat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest observed.
    Max,
    /// Arithmetic mean.
    Mean,
}

impl Metric {
    /// The unit the metric is observed in.
    pub fn kind(&self) -> MetricKind {
        match self {
            Metric::Requests | Metric::StatusCount(_) | Metric::FlagCount(_) | Metric::Stat(_) => {
                MetricKind::Count
            }
            Metric::Rps => MetricKind::PerSecond,
            Metric::SuccessRate
            | Metric::ErrorRate
            | Metric::StatusRate(_)
            | Metric::FlagRate(_)
            | Metric::OverflowRate
            | Metric::RatelimitedRate
            | Metric::TransportErrorRate
            | Metric::Share => MetricKind::Fraction,
            Metric::Latency(_) => MetricKind::Latency,
        }
    }

    /// The metric's name without its argument (`status_rate` for `status_rate(5xx)`).
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Rps => "rps",
            Metric::SuccessRate => "success_rate",
            Metric::ErrorRate => "error_rate",
            Metric::StatusRate(_) => "status_rate",
            Metric::StatusCount(_) => "status_count",
            Metric::FlagRate(_) => "flag_rate",
            Metric::FlagCount(_) => "flag_count",
            Metric::OverflowRate => "overflow_rate",
            Metric::RatelimitedRate => "ratelimited_rate",
            Metric::TransportErrorRate => "transport_error_rate",
            Metric::Share => "share",
            Metric::Latency(stat) => stat.metric_name(),
            Metric::Stat(_) => "stat",
        }
    }

    /// The Envoy response flag the metric counts, including the `overflow_rate` (UO) and
    /// `ratelimited_rate` (RL) aliases.
    pub fn response_flag(&self) -> Option<ResponseFlagName> {
        match self {
            Metric::FlagRate(flag) | Metric::FlagCount(flag) => Some(*flag),
            Metric::OverflowRate => Some(ResponseFlagName("UO")),
            Metric::RatelimitedRate => Some(ResponseFlagName("RL")),
            _ => None,
        }
    }

    /// `share` compares the `where.backend` part of a scope with the rest, so it needs one.
    pub fn needs_backend(&self) -> bool {
        matches!(self, Metric::Share)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Metric::StatusRate(s) | Metric::StatusCount(s) => write!(f, "({s})"),
            Metric::FlagRate(flag) | Metric::FlagCount(flag) => write!(f, "({flag})"),
            Metric::Stat(name) => write!(f, "({name})"),
            _ => Ok(()),
        }
    }
}

impl StatusSelector {
    /// Parses `503` (100..=599) or `5xx` (1xx..5xx).
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid status `{text}`: expected a status code from 100 to 599 or a class from 1xx to 5xx"
            )
        };
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes[0].is_ascii_digit() {
            return Err(invalid());
        }
        if &text[1..] == "xx" {
            let class = bytes[0] - b'0';
            return if (1..=5).contains(&class) {
                Ok(StatusSelector::Class(class))
            } else {
                Err(invalid())
            };
        }
        match text.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => Ok(StatusSelector::Code(code)),
            _ => Err(invalid()),
        }
    }

    /// Whether a response status is selected.
    pub fn matches(&self, status: u16) -> bool {
        match *self {
            StatusSelector::Code(code) => status == code,
            StatusSelector::Class(class) => status / 100 == u16::from(class),
        }
    }
}

impl fmt::Display for StatusSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSelector::Code(code) => write!(f, "{code}"),
            StatusSelector::Class(class) => write!(f, "{class}xx"),
        }
    }
}

impl ResponseFlagName {
    /// Looks a short name up in [`RESPONSE_FLAGS`] (case-sensitive, as Envoy writes them).
    pub fn parse(text: &str) -> Result<Self, String> {
        RESPONSE_FLAGS
            .iter()
            .find(|flag| **flag == text)
            .map(|flag| ResponseFlagName(flag))
            .ok_or_else(|| {
                format!(
                    "unknown Envoy response flag `{text}` (allowed: {})",
                    RESPONSE_FLAGS.join(", ")
                )
            })
    }

    /// The short name, as in Envoy's access log.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ResponseFlagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl LatencyStat {
    /// Every statistic, in the documented order.
    pub const ALL: [LatencyStat; 6] = [
        LatencyStat::P50,
        LatencyStat::P90,
        LatencyStat::P99,
        LatencyStat::P999,
        LatencyStat::Max,
        LatencyStat::Mean,
    ];

    /// The quantile (0.5 for p50), or None for `max` and `mean`.
    pub fn quantile(&self) -> Option<f64> {
        match self {
            LatencyStat::P50 => Some(0.5),
            LatencyStat::P90 => Some(0.9),
            LatencyStat::P99 => Some(0.99),
            LatencyStat::P999 => Some(0.999),
            LatencyStat::Max | LatencyStat::Mean => None,
        }
    }

    /// The metric name (`latency_p99`).
    pub fn metric_name(&self) -> &'static str {
        match self {
            LatencyStat::P50 => "latency_p50",
            LatencyStat::P90 => "latency_p90",
            LatencyStat::P99 => "latency_p99",
            LatencyStat::P999 => "latency_p999",
            LatencyStat::Max => "latency_max",
            LatencyStat::Mean => "latency_mean",
        }
    }
}

/// Builds a metric from its name and optional argument; errors say what is allowed.
pub(super) fn metric_from_parts(name: &str, arg: Option<&str>) -> Result<Metric, MetricError> {
    let plain = match name {
        "requests" => Some(Metric::Requests),
        "rps" => Some(Metric::Rps),
        "success_rate" => Some(Metric::SuccessRate),
        "error_rate" => Some(Metric::ErrorRate),
        "overflow_rate" => Some(Metric::OverflowRate),
        "ratelimited_rate" => Some(Metric::RatelimitedRate),
        "transport_error_rate" => Some(Metric::TransportErrorRate),
        "share" => Some(Metric::Share),
        _ => LatencyStat::ALL
            .iter()
            .find(|s| s.metric_name() == name)
            .map(|s| Metric::Latency(*s)),
    };
    if let Some(metric) = plain {
        return match arg {
            None => Ok(metric),
            Some(_) => Err(MetricError::Argument(format!("`{name}` takes no argument"))),
        };
    }
    let example = match name {
        "status_rate" | "status_count" => "(503) or (5xx)",
        "flag_rate" | "flag_count" => "(UO)",
        "stat" => "(upstream_rq_retry)",
        _ => return Err(MetricError::Unknown(unknown_metric(name))),
    };
    let Some(arg) = arg else {
        return Err(MetricError::Name(format!(
            "`{name}` needs an argument, for example {name}{example}"
        )));
    };
    let arg_error = MetricError::Argument;
    match name {
        "status_rate" => Ok(Metric::StatusRate(
            StatusSelector::parse(arg).map_err(arg_error)?,
        )),
        "status_count" => Ok(Metric::StatusCount(
            StatusSelector::parse(arg).map_err(arg_error)?,
        )),
        "flag_rate" => Ok(Metric::FlagRate(
            ResponseFlagName::parse(arg).map_err(arg_error)?,
        )),
        "flag_count" => Ok(Metric::FlagCount(
            ResponseFlagName::parse(arg).map_err(arg_error)?,
        )),
        _ => {
            let valid = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'));
            if valid {
                Ok(Metric::Stat(arg.to_string()))
            } else {
                Err(MetricError::Argument(format!(
                    "invalid stat name `{arg}`: expected an Envoy counter name such as upstream_rq_retry or outlier_detection.ejections_enforced_total"
                )))
            }
        }
    }
}

/// Why a metric could not be built, and which part of it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MetricError {
    /// The name is not a metric.
    Unknown(String),
    /// The name needs an argument it did not get.
    Name(String),
    /// The argument is wrong (or not wanted).
    Argument(String),
}

fn unknown_metric(name: &str) -> String {
    let known = METRIC_NAMES
        .iter()
        .map(|m| m.split('(').next().unwrap_or(m))
        .find(|m| edit_distance(m, name) <= 2);
    let hint = known
        .map(|m| format!("did you mean `{m}`? "))
        .unwrap_or_default();
    format!(
        "unknown metric `{name}`: {hint}allowed: {}",
        METRIC_NAMES.join(", ")
    )
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
