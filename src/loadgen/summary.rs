//! The end-of-load report: counts, achieved rate, latency and scheduling-error percentiles.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::sample::{Outcome, Sample, TransportErrorKind};

/// Lock shards of a [`Tally`]; workers spread over them by index.
const TALLY_SHARDS: usize = 4;

/// What one load did, ready to print as text (`Display`) or JSON (`Serialize`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// The load's name.
    pub name: String,
    /// `open` or `closed`.
    pub mode: &'static str,
    /// Open loop: the scheduled mean rate over the load's duration (req/s).
    pub target_rate: Option<f64>,
    /// Closed loop: the number of workers.
    pub concurrency: Option<usize>,
    /// The load's configured duration, in seconds.
    pub duration_s: f64,
    /// Requests that were due (sent + shed by the backlog cap).
    pub requests: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Sent requests per second of the configured duration.
    pub achieved_rate: f64,
    /// Complete responses.
    pub responses: u64,
    /// Responses per HTTP status.
    pub status_counts: BTreeMap<u16, u64>,
    /// Transport errors per kind.
    pub transport_errors: BTreeMap<TransportErrorKind, u64>,
    /// Requests shed by the open-loop backlog cap.
    pub client_overloads: u64,
    /// Latency over every sent request (open loop: from the intended send time).
    pub latency: Percentiles,
    /// Actual send time minus intended send time (open loop; zero in closed loop).
    pub scheduling_error: Percentiles,
}

/// Percentiles of a duration distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// Running totals of one load, shared by its workers (sharded so they rarely contend).
#[derive(Debug)]
pub(crate) struct Tally {
    shards: Box<[Mutex<TallyShard>]>,
}

#[derive(Debug, Clone)]
struct TallyShard {
    requests: u64,
    sent: u64,
    responses: u64,
    statuses: BTreeMap<u16, u64>,
    transport: [u64; TransportErrorKind::COUNT],
    client_overloads: u64,
    latency: Histogram<u64>,
    scheduling: Histogram<u64>,
}

/// Fixed facts about the load that the totals are reported against.
#[derive(Debug, Clone)]
pub(crate) struct SummaryHeader {
    pub name: String,
    pub mode: &'static str,
    pub target_rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub duration: Duration,
}

impl Tally {
    /// Empty totals whose histograms copy `template`'s bounds.
    pub(crate) fn new(template: &Histogram<u64>) -> Self {
        let shard = TallyShard {
            requests: 0,
            sent: 0,
            responses: 0,
            statuses: BTreeMap::new(),
            transport: [0; TransportErrorKind::COUNT],
            client_overloads: 0,
            latency: Histogram::new_from(template),
            scheduling: Histogram::new_from(template),
        };
        let shards = (0..TALLY_SHARDS)
            .map(|_| Mutex::new(shard.clone()))
            .collect();
        Self { shards }
    }

    /// Counts `sample`, on the shard of worker `slot`.
    pub(crate) fn add(&self, slot: usize, sample: &Sample) {
        let mut shard = self.shards[slot % self.shards.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.requests += 1;
        let sent = match &sample.outcome {
            Outcome::Response(info) => {
                shard.responses += 1;
                *shard.statuses.entry(info.status).or_default() += 1;
                true
            }
            Outcome::TransportError(kind) => {
                shard.transport[kind.index()] += 1;
                true
            }
            Outcome::ClientOverload => {
                shard.client_overloads += 1;
                false
            }
        };
        if sent {
            shard.sent += 1;
            shard.latency.saturating_record(micros(sample.latency));
            let late = sample.sent.saturating_sub(sample.intended);
            shard.scheduling.saturating_record(micros(late));
        }
    }

    /// Folds the shards into the report.
    pub(crate) fn summarize(&self, header: SummaryHeader) -> LoadSummary {
        let mut total: Option<TallyShard> = None;
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            match total.as_mut() {
                None => total = Some(shard.clone()),
                Some(t) => t.merge(&shard),
            }
        }
        let Some(total) = total else {
            return LoadSummary::empty(header);
        };
        let seconds = header.duration.as_secs_f64();
        LoadSummary {
            name: header.name,
            mode: header.mode,
            target_rate: header.target_rate,
            concurrency: header.concurrency,
            duration_s: seconds,
            requests: total.requests,
            sent: total.sent,
            achieved_rate: if seconds > 0.0 {
                total.sent as f64 / seconds
            } else {
                0.0
            },
            responses: total.responses,
            status_counts: total.statuses,
            transport_errors: TransportErrorKind::ALL
                .into_iter()
                .filter(|k| total.transport[k.index()] > 0)
                .map(|k| (k, total.transport[k.index()]))
                .collect(),
            client_overloads: total.client_overloads,
            latency: Percentiles::of(&total.latency),
            scheduling_error: Percentiles::of(&total.scheduling),
        }
    }
}

impl TallyShard {
    fn merge(&mut self, other: &TallyShard) {
        self.requests += other.requests;
        self.sent += other.sent;
        self.responses += other.responses;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        for (mine, theirs) in self.transport.iter_mut().zip(other.transport) {
            *mine += theirs;
        }
        self.client_overloads += other.client_overloads;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.scheduling.add(&other.scheduling);
    }
}

impl LoadSummary {
    fn empty(header: SummaryHeader) -> Self {
        Self {
            name: header.name,
            mode: header.mode,
            target_rate: header.target_rate,
            concurrency: header.concurrency,
            duration_s: header.duration.as_secs_f64(),
            requests: 0,
            sent: 0,
            achieved_rate: 0.0,
            responses: 0,
            status_counts: BTreeMap::new(),
            transport_errors: BTreeMap::new(),
            client_overloads: 0,
            latency: Percentiles::default(),
            scheduling_error: Percentiles::default(),
        }
    }

    /// Responses with a status in the class (`5` for 5xx).
    pub fn status_class_count(&self, class: u16) -> u64 {
        self.status_counts
            .range(class * 100..(class + 1) * 100)
            .map(|(_, n)| n)
            .sum()
    }
}

impl Percentiles {
    /// Percentiles of a histogram in microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p90_ms: ms(histogram.value_at_quantile(0.9)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "load {}: {} loop", self.name, self.mode)?;
        if let Some(rate) = self.target_rate {
            write!(f, ", target {rate:.1} req/s")?;
        }
        if let Some(workers) = self.concurrency {
            write!(f, ", {workers} workers")?;
        }
        writeln!(f, ", {:.1}s", self.duration_s)?;
        writeln!(
            f,
            "  requests {}  sent {}  achieved {:.1} req/s",
            self.requests, self.sent, self.achieved_rate
        )?;
        write!(f, "  responses {}", self.responses)?;
        for class in 1..=5 {
            let n = self.status_class_count(class);
            if n > 0 {
                write!(f, "  {class}xx {n}")?;
            }
        }
        writeln!(f)?;
        if !self.transport_errors.is_empty() || self.client_overloads > 0 {
            write!(f, "  errors")?;
            for (kind, n) in &self.transport_errors {
                write!(f, "  {kind} {n}")?;
            }
            if self.client_overloads > 0 {
                write!(f, "  client-overload {}", self.client_overloads)?;
            }
            writeln!(f)?;
        }
        writeln!(f, "  latency          {}", self.latency)?;
        write!(f, "  scheduling error {}", self.scheduling_error)
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2}ms  p90 {:.2}ms  p99 {:.2}ms  p99.9 {:.2}ms  max {:.2}ms  mean {:.2}ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms
        )
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
