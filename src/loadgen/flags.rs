//! Envoy response flags as a small closed set, so counting them is an array index, not a map.

use std::fmt;

use serde::{Serialize, Serializer};

/// One Envoy access-log response flag (`%RESPONSE_FLAGS%`), by its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseFlag {
    /// `UH`: no healthy upstream host.
    NoHealthyUpstream,
    /// `UF`: upstream connection failure.
    UpstreamConnectionFailure,
    /// `UO`: upstream overflow (circuit breaker).
    UpstreamOverflow,
    /// `NR`: no route found.
    NoRouteFound,
    /// `URX`: retry or connect-attempt limit reached.
    UpstreamRetryLimitExceeded,
    /// `NC`: no cluster found.
    NoClusterFound,
    /// `DT`: request or connection exceeded its max duration.
    DurationTimeout,
    /// `DC`: downstream connection termination.
    DownstreamConnectionTermination,
    /// `LH`: local health check failed.
    FailedLocalHealthCheck,
    /// `UT`: upstream request timeout.
    UpstreamRequestTimeout,
    /// `LR`: connection local reset.
    LocalReset,
    /// `UR`: upstream remote reset.
    UpstreamRemoteReset,
    /// `UC`: upstream connection termination.
    UpstreamConnectionTermination,
    /// `DI`: request delayed by fault injection.
    DelayInjected,
    /// `FI`: request aborted by fault injection.
    FaultInjected,
    /// `RL`: rate limited locally.
    RateLimited,
    /// `UAEX`: denied by the external authorization service.
    UnauthorizedExternalService,
    /// `RLSE`: rate-limit service error.
    RateLimitServiceError,
    /// `IH`: invalid Envoy request headers.
    InvalidEnvoyRequestHeaders,
    /// `SI`: stream idle timeout.
    StreamIdleTimeout,
    /// `DPE`: downstream protocol error.
    DownstreamProtocolError,
    /// `UPE`: upstream protocol error.
    UpstreamProtocolError,
    /// `UMSDR`: upstream max stream duration reached.
    UpstreamMaxStreamDurationReached,
    /// `OM`: overload manager.
    OverloadManager,
    /// `DF`: DNS resolution failed.
    DnsResolutionFailed,
    /// `DO`: dropped by drop-overload.
    DropOverload,
}

/// A set of response flags (Envoy may set several on one request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlagSet(u32);

impl ResponseFlag {
    /// How many flags exist (the length of per-flag counter arrays).
    pub const COUNT: usize = 26;

    /// Every flag, in declaration order (`ALL[f.index()] == f`).
    pub const ALL: [ResponseFlag; Self::COUNT] = [
        Self::NoHealthyUpstream,
        Self::UpstreamConnectionFailure,
        Self::UpstreamOverflow,
        Self::NoRouteFound,
        Self::UpstreamRetryLimitExceeded,
        Self::NoClusterFound,
        Self::DurationTimeout,
        Self::DownstreamConnectionTermination,
        Self::FailedLocalHealthCheck,
        Self::UpstreamRequestTimeout,
        Self::LocalReset,
        Self::UpstreamRemoteReset,
        Self::UpstreamConnectionTermination,
        Self::DelayInjected,
        Self::FaultInjected,
        Self::RateLimited,
        Self::UnauthorizedExternalService,
        Self::RateLimitServiceError,
        Self::InvalidEnvoyRequestHeaders,
        Self::StreamIdleTimeout,
        Self::DownstreamProtocolError,
        Self::UpstreamProtocolError,
        Self::UpstreamMaxStreamDurationReached,
        Self::OverloadManager,
        Self::DnsResolutionFailed,
        Self::DropOverload,
    ];

    /// Envoy's short name (`UO`, `URX`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoHealthyUpstream => "UH",
            Self::UpstreamConnectionFailure => "UF",
            Self::UpstreamOverflow => "UO",
            Self::NoRouteFound => "NR",
            Self::UpstreamRetryLimitExceeded => "URX",
            Self::NoClusterFound => "NC",
            Self::DurationTimeout => "DT",
            Self::DownstreamConnectionTermination => "DC",
            Self::FailedLocalHealthCheck => "LH",
            Self::UpstreamRequestTimeout => "UT",
            Self::LocalReset => "LR",
            Self::UpstreamRemoteReset => "UR",
            Self::UpstreamConnectionTermination => "UC",
            Self::DelayInjected => "DI",
            Self::FaultInjected => "FI",
            Self::RateLimited => "RL",
            Self::UnauthorizedExternalService => "UAEX",
            Self::RateLimitServiceError => "RLSE",
            Self::InvalidEnvoyRequestHeaders => "IH",
            Self::StreamIdleTimeout => "SI",
            Self::DownstreamProtocolError => "DPE",
            Self::UpstreamProtocolError => "UPE",
            Self::UpstreamMaxStreamDurationReached => "UMSDR",
            Self::OverloadManager => "OM",
            Self::DnsResolutionFailed => "DF",
            Self::DropOverload => "DO",
        }
    }

    /// The flag with this short name, if Envoy has one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Position in [`Self::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ResponseFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResponseFlag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FlagSet {
    /// No flags.
    pub const EMPTY: FlagSet = FlagSet(0);

    /// Adds `flag`.
    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= 1 << flag.index();
    }

    /// Whether `flag` is set.
    pub fn contains(self, flag: ResponseFlag) -> bool {
        self.0 & (1 << flag.index()) != 0
    }

    /// Whether no flag is set (Envoy prints `-`).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ResponseFlag> {
        ResponseFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl FromIterator<ResponseFlag> for FlagSet {
    fn from_iter<I: IntoIterator<Item = ResponseFlag>>(iter: I) -> Self {
        let mut set = FlagSet::EMPTY;
        iter.into_iter().for_each(|f| set.insert(f));
        set
    }
}
