//! Per-window, per-series aggregation of requests: counters plus an HDR latency histogram.
//!
//! Requests are bucketed by their *intended* time into fixed windows (1 s by default) and by a
//! [`SeriesKey`]. Recent windows keep a dense histogram so recording is O(1); once a shard has
//! seen a sample two windows newer, older entries are compacted to their non-empty buckets only
//! (varint-encoded, typically a few bytes per bucket instead of ~23 000 eight-byte slots), so
//! memory per (window, key) stays small (hundreds of bytes to a few KB) and
//! nothing grows with the number of samples. Late samples for a compacted window simply open a
//! new live entry that is merged in later, so no sample is ever lost.
//!
//! Concurrency: entries are sharded by key over a few `std` mutexes; a lock is held only for a
//! counter update (never across `.await`). Queries lock every shard, then the compacted store, in
//! that fixed order — the same order compaction uses — so they see each sample exactly once.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use thiserror::Error;

use super::flags::{FlagSet, ResponseFlag};
use super::interner::Interner;
use super::sample::{Outcome, Sample, SampleSink, TransportErrorKind};
use super::sparse::SparseBuckets;

/// Lowest latency the histograms resolve, in microseconds.
pub const HISTOGRAM_LOW_US: u64 = 1;
/// Highest latency the histograms hold (3600 s), in microseconds; longer values are clamped.
pub const HISTOGRAM_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits the histograms keep.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// Number of lock shards (a power of two; few cores, short critical sections).
const SHARDS: usize = 8;
/// Dense histograms a shard keeps for reuse instead of freeing and reallocating them.
const SPARE_HISTOGRAMS: usize = 2;

/// Why a recorder could not be built.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// The window is shorter than a millisecond.
    #[error("window {0:?} is too short (at least 1ms)")]
    WindowTooShort(Duration),
    /// hdrhistogram rejected the bounds (cannot happen with the fixed constants).
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// The series a request belongs to. Ids come from the recorder's [`Interner`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// Index of the load that sent the request.
    pub load: u16,
    /// Route id (`WindowedRecorder::routes`), when known (from the proxy's side).
    pub route: Option<u32>,
    /// Backend id (`WindowedRecorder::backends`), when known.
    pub backend: Option<u32>,
    /// Replica index, when known.
    pub replica: Option<u16>,
}

/// What happened to one request, as the recorder counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A response with this status and these Envoy response flags.
    Response {
        /// HTTP status.
        status: u16,
        /// Envoy response flags (empty when the proxy set none).
        flags: FlagSet,
    },
    /// A client-side transport failure.
    TransportError(TransportErrorKind),
    /// Shed by the load generator's backlog cap (never sent).
    ClientOverload,
}

/// One request to record: its window comes from `intended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Intended send time since the run started.
    pub intended: Duration,
    /// Latency to record (`None`: the request was never sent).
    pub latency: Option<Duration>,
    /// What happened.
    pub observed: Observed,
}

/// The sum over the selected windows and series.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Requests counted (responses + transport errors + client overloads).
    pub requests: u64,
    /// Responses per HTTP status.
    pub status_counts: BTreeMap<u16, u64>,
    /// Responses per Envoy response flag (flags never seen are absent).
    pub flag_counts: BTreeMap<ResponseFlag, u64>,
    /// Transport errors per kind (kinds never seen are absent).
    pub transport_errors: BTreeMap<TransportErrorKind, u64>,
    /// Requests the generator shed because its backlog cap was hit.
    pub client_overloads: u64,
    /// Latency of every sent request, in microseconds.
    pub histogram: Histogram<u64>,
}

/// Thread-safe windowed recorder; also a [`SampleSink`].
#[derive(Debug)]
pub struct WindowedRecorder {
    window: Duration,
    template: Histogram<u64>,
    shards: Box<[Mutex<LiveShard>]>,
    closed: Mutex<BTreeMap<u32, HashMap<SeriesKey, ClosedEntry>>>,
    backends: Interner,
    routes: Interner,
}

/// Counters shared by live and compacted entries.
#[derive(Debug, Clone, Default)]
struct Counters {
    requests: u64,
    /// (status, count), sorted by status; a handful of statuses per series in practice.
    statuses: Vec<(u16, u64)>,
    flags: [u64; ResponseFlag::COUNT],
    transport: [u64; TransportErrorKind::COUNT],
    client_overloads: u64,
}

#[derive(Debug)]
struct LiveEntry {
    counters: Counters,
    histogram: Histogram<u64>,
}

/// A compacted entry: counters and the histogram's non-empty buckets.
#[derive(Debug, Clone, Default)]
struct ClosedEntry {
    counters: Counters,
    buckets: SparseBuckets,
}

#[derive(Debug, Default)]
struct LiveShard {
    newest: u32,
    entries: HashMap<(u32, SeriesKey), LiveEntry>,
    spare: Vec<Histogram<u64>>,
}

impl WindowedRecorder {
    /// A recorder with `window`-long windows (1 s is the scenario default).
    pub fn try_new(window: Duration) -> Result<Self, RecorderError> {
        if window < Duration::from_millis(1) {
            return Err(RecorderError::WindowTooShort(window));
        }
        let template =
            Histogram::new_with_bounds(HISTOGRAM_LOW_US, HISTOGRAM_HIGH_US, HISTOGRAM_SIGFIG)?;
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Ok(Self {
            window,
            template,
            shards,
            closed: Mutex::default(),
            backends: Interner::new(),
            routes: Interner::new(),
        })
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Backend names ↔ ids used in [`SeriesKey::backend`].
    pub fn backends(&self) -> &Interner {
        &self.backends
    }

    /// Route names ↔ ids used in [`SeriesKey::route`].
    pub fn routes(&self) -> &Interner {
        &self.routes
    }

    /// An empty histogram with the recorder's bounds (µs, 3 digits, 1 µs..3600 s).
    pub fn empty_histogram(&self) -> Histogram<u64> {
        Histogram::new_from(&self.template)
    }

    /// Records one request under `key`.
    pub fn record_observation(&self, key: SeriesKey, observation: Observation) {
        let window = self.window_of(observation.intended);
        let mut shard = lock(&self.shards[shard_of(&key)]);
        if window > shard.newest {
            shard.newest = window;
            self.compact(&mut shard, window.saturating_sub(1));
        }
        let LiveShard { entries, spare, .. } = &mut *shard;
        let entry = entries.entry((window, key)).or_insert_with(|| LiveEntry {
            counters: Counters::default(),
            histogram: spare
                .pop()
                .unwrap_or_else(|| Histogram::new_from(&self.template)),
        });
        entry.counters.observe(observation.observed);
        if let Some(latency) = observation.latency {
            entry.histogram.saturating_record(micros(latency));
        }
    }

    /// Compacts every live entry (call at the end of a run to release the dense histograms).
    pub fn flush(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            self.compact(&mut shard, u32::MAX);
            shard.spare.clear();
        }
    }

    /// Sums the windows overlapping `[from, to)` (by intended time) over the keys `filter` keeps.
    pub fn aggregate(
        &self,
        filter: impl Fn(&SeriesKey) -> bool,
        from: Duration,
        to: Duration,
    ) -> Aggregate {
        let (first, end) = self.window_range(from, to);
        let mut counters = Counters::default();
        let mut histogram = self.empty_histogram();
        // Lock order: every shard, then the compacted store (the order compaction uses).
        let shards: Vec<_> = self.shards.iter().map(lock).collect();
        let closed = lock(&self.closed);
        for shard in &shards {
            for ((window, key), entry) in &shard.entries {
                if (first..end).contains(window) && filter(key) {
                    counters.add(&entry.counters);
                    // Same bounds on both sides, so adding cannot fail.
                    let _ = histogram.add(&entry.histogram);
                }
            }
        }
        for (_, series) in closed.range(first..end) {
            for (key, entry) in series {
                if filter(key) {
                    counters.add(&entry.counters);
                    entry.buckets.record_into(&mut histogram);
                }
            }
        }
        drop(closed);
        drop(shards);
        counters.into_aggregate(histogram)
    }

    /// One aggregate per window overlapping `[from, to)`, with the window's start time; windows
    /// with no requests in scope are included (as zeros) so a time series has no gaps. Lazy: an
    /// aggregate holds a full histogram (a few hundred KiB), so a caller that keeps only a few
    /// numbers per window never holds more than one, however long the run.
    pub fn timeline<'a>(
        &'a self,
        filter: impl Fn(&SeriesKey) -> bool + 'a,
        from: Duration,
        to: Duration,
    ) -> impl Iterator<Item = (Duration, Aggregate)> + 'a {
        let (first, end) = self.window_range(from, to);
        let last_seen = self.newest_window().map_or(0, |w| w.saturating_add(1));
        (first..end.min(last_seen)).map(move |w| {
            let start = self.window.saturating_mul(w);
            (start, self.aggregate(&filter, start, start + self.window))
        })
    }

    /// The newest window any sample fell in, if any.
    pub fn newest_window(&self) -> Option<u32> {
        let live = self
            .shards
            .iter()
            .filter_map(|s| {
                let s = lock(s);
                s.entries.keys().map(|(w, _)| *w).max()
            })
            .max();
        let closed = lock(&self.closed).keys().next_back().copied();
        live.max(closed)
    }

    /// (live, compacted) entry counts — what the recorder's memory is proportional to.
    pub fn entry_counts(&self) -> (usize, usize) {
        let live = self.shards.iter().map(|s| lock(s).entries.len()).sum();
        let closed = lock(&self.closed).values().map(HashMap::len).sum();
        (live, closed)
    }

    /// Approximate heap bytes held by compacted entries (what grows, slowly, with run length).
    pub fn compacted_bytes(&self) -> usize {
        let closed = lock(&self.closed);
        closed
            .values()
            .flat_map(HashMap::values)
            .map(|e| {
                std::mem::size_of::<(SeriesKey, ClosedEntry)>()
                    + e.buckets.byte_len()
                    + e.counters.statuses.len() * std::mem::size_of::<(u16, u64)>()
            })
            .sum()
    }

    fn window_of(&self, intended: Duration) -> u32 {
        let index = intended.as_nanos() / self.window.as_nanos();
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    /// Windows overlapping `[from, to)` as an index range `first..end`.
    fn window_range(&self, from: Duration, to: Duration) -> (u32, u32) {
        let width = self.window.as_nanos();
        let first = u32::try_from(from.as_nanos() / width).unwrap_or(u32::MAX);
        let end = u32::try_from(to.as_nanos().div_ceil(width)).unwrap_or(u32::MAX);
        (first, end.max(first))
    }

    /// Moves this shard's entries older than window `keep_from` into the compacted store.
    /// Runs under the shard lock so a concurrent query never sees an entry twice or not at all.
    fn compact(&self, shard: &mut LiveShard, keep_from: u32) {
        let old: Vec<(u32, SeriesKey)> = shard
            .entries
            .keys()
            .filter(|(w, _)| *w < keep_from)
            .copied()
            .collect();
        if old.is_empty() {
            return;
        }
        let mut closed = lock(&self.closed);
        for id in old {
            let Some(mut live) = shard.entries.remove(&id) else {
                continue;
            };
            let target = closed.entry(id.0).or_default().entry(id.1).or_default();
            target.counters.add(&live.counters);
            target.buckets.add_histogram(&live.histogram);
            if shard.spare.len() < SPARE_HISTOGRAMS {
                live.histogram.reset();
                shard.spare.push(live.histogram);
            }
        }
    }
}

impl SampleSink for WindowedRecorder {
    /// Keys the sample by load, backend and replica (route is unknown on the client side) and
    /// derives `UO` / `RL` from the `x-envoy-overloaded` / `x-envoy-ratelimited` headers.
    fn record(&self, sample: Sample) {
        let (key, observed, latency) = match &sample.outcome {
            Outcome::Response(info) => {
                let mut flags = FlagSet::EMPTY;
                if info.overloaded {
                    flags.insert(ResponseFlag::UpstreamOverflow);
                }
                if info.ratelimited {
                    flags.insert(ResponseFlag::RateLimited);
                }
                let key = SeriesKey {
                    load: sample.load,
                    route: None,
                    backend: info.backend.as_deref().map(|b| self.backends.intern(b)),
                    replica: info.replica,
                };
                let observed = Observed::Response {
                    status: info.status,
                    flags,
                };
                (key, observed, Some(sample.latency))
            }
            Outcome::TransportError(kind) => (
                client_key(sample.load),
                Observed::TransportError(*kind),
                Some(sample.latency),
            ),
            Outcome::ClientOverload => (client_key(sample.load), Observed::ClientOverload, None),
        };
        self.record_observation(
            key,
            Observation {
                intended: sample.intended,
                latency,
                observed,
            },
        );
    }
}

impl Counters {
    fn observe(&mut self, observed: Observed) {
        self.requests += 1;
        match observed {
            Observed::Response { status, flags } => {
                match self.statuses.binary_search_by_key(&status, |(s, _)| *s) {
                    Ok(i) => self.statuses[i].1 += 1,
                    Err(i) => self.statuses.insert(i, (status, 1)),
                }
                for flag in flags.iter() {
                    self.flags[flag.index()] += 1;
                }
            }
            Observed::TransportError(kind) => self.transport[kind.index()] += 1,
            Observed::ClientOverload => self.client_overloads += 1,
        }
    }

    fn add(&mut self, other: &Counters) {
        self.requests += other.requests;
        for &(status, count) in &other.statuses {
            match self.statuses.binary_search_by_key(&status, |(s, _)| *s) {
                Ok(i) => self.statuses[i].1 += count,
                Err(i) => self.statuses.insert(i, (status, count)),
            }
        }
        for (mine, theirs) in self.flags.iter_mut().zip(other.flags) {
            *mine += theirs;
        }
        for (mine, theirs) in self.transport.iter_mut().zip(other.transport) {
            *mine += theirs;
        }
        self.client_overloads += other.client_overloads;
    }

    fn into_aggregate(self, histogram: Histogram<u64>) -> Aggregate {
        let nonzero = |(i, n): (usize, &u64)| (*n > 0).then_some((i, *n));
        Aggregate {
            requests: self.requests,
            status_counts: self.statuses.into_iter().collect(),
            flag_counts: self
                .flags
                .iter()
                .enumerate()
                .filter_map(nonzero)
                .map(|(i, n)| (ResponseFlag::ALL[i], n))
                .collect(),
            transport_errors: self
                .transport
                .iter()
                .enumerate()
                .filter_map(nonzero)
                .map(|(i, n)| (TransportErrorKind::ALL[i], n))
                .collect(),
            client_overloads: self.client_overloads,
            histogram,
        }
    }
}

impl Aggregate {
    /// The latency at quantile `q` (0.0..=1.0); zero when nothing was recorded.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.histogram.value_at_quantile(q))
    }

    /// Median latency.
    pub fn p50(&self) -> Duration {
        self.latency_quantile(0.5)
    }

    /// 90th percentile latency.
    pub fn p90(&self) -> Duration {
        self.latency_quantile(0.9)
    }

    /// 99th percentile latency.
    pub fn p99(&self) -> Duration {
        self.latency_quantile(0.99)
    }

    /// 99.9th percentile latency.
    pub fn p999(&self) -> Duration {
        self.latency_quantile(0.999)
    }

    /// Highest latency recorded.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.histogram.max())
    }

    /// Mean latency.
    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.histogram.mean() / 1e6)
    }

    /// Responses with exactly this status.
    pub fn status_count(&self, status: u16) -> u64 {
        self.status_counts.get(&status).copied().unwrap_or(0)
    }

    /// Responses with a status in the class (`5` for 5xx).
    pub fn status_class_count(&self, class: u16) -> u64 {
        self.status_counts
            .range(class * 100..(class + 1) * 100)
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses carrying `flag`.
    pub fn flag_count(&self, flag: ResponseFlag) -> u64 {
        self.flag_counts.get(&flag).copied().unwrap_or(0)
    }

    /// All transport errors, every kind.
    pub fn transport_error_count(&self) -> u64 {
        self.transport_errors.values().sum()
    }

    /// Share of requests answered 2xx or 3xx (1.0 when there were none: nothing failed).
    pub fn success_rate(&self) -> f64 {
        if self.requests == 0 {
            return 1.0;
        }
        let ok = self.status_class_count(2) + self.status_class_count(3);
        ok as f64 / self.requests as f64
    }
}

/// The key of a request the proxy never answered: only the load is known.
fn client_key(load: u16) -> SeriesKey {
    SeriesKey {
        load,
        route: None,
        backend: None,
        replica: None,
    }
}

fn shard_of(key: &SeriesKey) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() as usize) % SHARDS
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves counters that are still consistent enough to report.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
