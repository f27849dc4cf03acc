//! Envoy response flags (`%RESPONSE_FLAGS%`): the short codes explaining how a request ended.

use std::fmt;

/// One Envoy response flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ResponseFlag {
    /// `UH`: no healthy upstream host.
    NoHealthyUpstream = 1 << 0,
    /// `UF`: upstream connection failure (refused or connect timeout).
    UpstreamConnectionFailure = 1 << 1,
    /// `UO`: upstream overflow (circuit breaking).
    UpstreamOverflow = 1 << 2,
    /// `NR`: no route configured.
    NoRouteFound = 1 << 3,
    /// `URX`: upstream retry limit exceeded.
    UpstreamRetryLimitExceeded = 1 << 4,
    /// `UT`: upstream request timeout.
    UpstreamRequestTimeout = 1 << 5,
    /// `UC`: upstream connection termination.
    UpstreamConnectionTermination = 1 << 6,
    /// `UR`: upstream remote reset.
    UpstreamRemoteReset = 1 << 7,
    /// `SI`: stream idle timeout.
    StreamIdleTimeout = 1 << 8,
    /// `DT`: max stream duration reached.
    DurationTimeout = 1 << 9,
    /// `DC`: downstream connection termination.
    DownstreamConnectionTermination = 1 << 10,
    /// `RL`: rate limited.
    RateLimited = 1 << 11,
    /// `FI`: fault injected (abort).
    FaultInjected = 1 << 12,
    /// `DI`: delay injected.
    DelayInjected = 1 << 13,
}

/// A set of response flags, printed comma-joined in Envoy's order (`-` when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u16);

/// Every flag with its code, in the order Envoy prints them.
const ORDER: [(ResponseFlag, &str); 14] = [
    (ResponseFlag::NoHealthyUpstream, "UH"),
    (ResponseFlag::UpstreamConnectionFailure, "UF"),
    (ResponseFlag::UpstreamOverflow, "UO"),
    (ResponseFlag::NoRouteFound, "NR"),
    (ResponseFlag::UpstreamRetryLimitExceeded, "URX"),
    (ResponseFlag::UpstreamRequestTimeout, "UT"),
    (ResponseFlag::UpstreamConnectionTermination, "UC"),
    (ResponseFlag::UpstreamRemoteReset, "UR"),
    (ResponseFlag::StreamIdleTimeout, "SI"),
    (ResponseFlag::DurationTimeout, "DT"),
    (ResponseFlag::DownstreamConnectionTermination, "DC"),
    (ResponseFlag::RateLimited, "RL"),
    (ResponseFlag::FaultInjected, "FI"),
    (ResponseFlag::DelayInjected, "DI"),
];

impl ResponseFlag {
    /// Envoy's short code, e.g. `UO`.
    pub fn code(self) -> &'static str {
        ORDER
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("-", |(_, c)| c)
    }
}

impl ResponseFlags {
    /// No flags.
    pub const EMPTY: ResponseFlags = ResponseFlags(0);

    /// Adds a flag.
    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= flag as u16;
    }

    /// Whether the flag is set.
    pub fn contains(self, flag: ResponseFlag) -> bool {
        self.0 & flag as u16 != 0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set flags' codes in Envoy order.
    pub fn codes(self) -> impl Iterator<Item = &'static str> {
        ORDER
            .iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, c)| *c)
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(flag: ResponseFlag) -> Self {
        ResponseFlags(flag as u16)
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, code) in self.codes().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(code)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prints_dash() {
        assert_eq!(ResponseFlags::EMPTY.to_string(), "-");
    }

    #[test]
    fn flags_join_in_envoy_order() {
        let mut f = ResponseFlags::from(ResponseFlag::UpstreamRetryLimitExceeded);
        f.insert(ResponseFlag::UpstreamConnectionFailure);
        assert_eq!(f.to_string(), "UF,URX");
        assert!(f.contains(ResponseFlag::UpstreamConnectionFailure));
        assert!(!f.contains(ResponseFlag::UpstreamOverflow));
        assert_eq!(ResponseFlag::UpstreamOverflow.code(), "UO");
    }
}
