//! Runs one load: a pacer hands out tickets, workers (one connection each) send them.
//!
//! Both modes share one worker loop and one client; only the pacer differs:
//! - open loop: ticket *i* is due at `start + schedule.intended(i)`. One idle worker at a time
//!   (the baton holder, the most recently idle one) takes the next ticket from a shared
//!   counter and waits until it is due, then hands the baton on and sends; so the connections in
//!   use follow the concurrency the target needs. When every worker is busy, tickets
//!   are simply taken late — the backlog is a counter, not a queue in memory — and the latency,
//!   measured from the intended time, includes that wait (coordinated-omission correction, as in
//!   wrk2). If the backlog grows beyond `max_backlog` tickets, the overdue ticket is recorded as
//!   [`Outcome::ClientOverload`] instead of being sent, so a stalled target cannot make the
//!   generator fire an unbounded burst when it recovers.
//! - closed loop: each worker sends back to back; a request's intended time is its send time.
//!
//! In-flight requests are bounded by the number of workers. Nothing is spawned per request.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use hdrhistogram::Histogram;
use http::Method;
use thiserror::Error;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::baton::Baton;
use super::client::{Client, ClientError, Connection, RequestTemplate};
use super::recorder::{HISTOGRAM_HIGH_US, HISTOGRAM_LOW_US, HISTOGRAM_SIGFIG};
use super::sample::{Outcome, Sample, SampleSink};
use super::schedule::Schedule;
use super::summary::{LoadSummary, SummaryHeader, Tally};

/// Default cap on overdue, not-yet-sent open-loop requests.
pub const DEFAULT_MAX_BACKLOG: u64 = 10_000;
/// Default client-side request timeout (the scenario format's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Fewest connections an open-loop load gets by default.
const MIN_DEFAULT_CONNECTIONS: usize = 16;
/// Most connections an open-loop load gets by default (file descriptors are finite).
const MAX_DEFAULT_CONNECTIONS: usize = 1024;
/// Shed tickets a worker settles before yielding to the scheduler.
const SHED_BATCH: u32 = 256;

/// Everything one load needs to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The load's name (reports).
    pub name: String,
    /// The load's index (`Sample::load`, `SeriesKey::load`, part of the request id).
    pub index: u16,
    /// Where requests go (the scenario's proxy listener).
    pub target: SocketAddr,
    /// Host header; the target address when `None`.
    pub host: Option<String>,
    /// HTTP method.
    pub method: Method,
    /// Request path (origin form, e.g. `/payments?x=1`).
    pub path: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Open or closed loop.
    pub mode: LoadMode,
    /// When the load starts, relative to the run start.
    pub start: Duration,
    /// How long the load sends (open loop: requests due in `[start, start + duration)`; with
    /// stages, usually `Schedule::length`, as the schedule ends after its last stage).
    pub duration: Duration,
    /// Client-side timeout per request, from the moment it is sent.
    pub timeout: Duration,
    /// Open loop: number of keep-alive connections (= workers). Closed loop: ignored; each of
    /// the `concurrency` workers has its own connection.
    pub connections: NonZeroUsize,
    /// Open loop: overdue, not-yet-sent requests allowed before further ones are shed as client
    /// overload (0 sheds every request that is already late when a worker takes it).
    pub max_backlog: u64,
    /// First part of every `x-request-id` (`<prefix>-<index>-<seq>`), e.g. the run id; `None`
    /// sends no `x-request-id`.
    pub request_id_prefix: Option<String>,
}

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadMode {
    /// Requests leave on a schedule, whatever the responses do.
    Open(Schedule),
    /// `concurrency` workers each send their next request when the previous one is done.
    Closed {
        /// Number of workers.
        concurrency: NonZeroUsize,
    },
}

/// Why a load could not run.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The request template is invalid.
    #[error("load {load}: {source}")]
    Request {
        /// The load's name.
        load: String,
        /// What is wrong.
        #[source]
        source: ClientError,
    },
    /// `duration` or `timeout` is zero.
    #[error("load {load}: {field} must be above zero")]
    Zero {
        /// The load's name.
        load: String,
        /// The field.
        field: &'static str,
    },
    /// hdrhistogram rejected the bounds (cannot happen with the fixed constants).
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// A worker task panicked.
    #[error("load {load}: a worker panicked")]
    WorkerPanicked {
        /// The load's name.
        load: String,
    },
}

impl LoadSpec {
    /// A `GET /` load with the defaults: no start delay, [`DEFAULT_TIMEOUT`],
    /// [`LoadMode::default_connections`], [`DEFAULT_MAX_BACKLOG`], request ids `cg-<index>-<n>`.
    pub fn new(
        name: impl Into<String>,
        target: SocketAddr,
        mode: LoadMode,
        duration: Duration,
    ) -> Self {
        let connections = mode.default_connections();
        Self {
            name: name.into(),
            index: 0,
            target,
            host: None,
            method: Method::GET,
            path: "/".to_owned(),
            headers: Vec::new(),
            mode,
            start: Duration::ZERO,
            duration,
            timeout: DEFAULT_TIMEOUT,
            connections,
            max_backlog: DEFAULT_MAX_BACKLOG,
            request_id_prefix: Some("cg".to_owned()),
        }
    }
}

impl LoadMode {
    /// Connections to give a load by default. Open loop: enough for one second of requests at
    /// the peak rate to be in flight at once (16..=1024) — idle connections cost nothing, as
    /// they are opened only when needed. Closed loop: one per worker.
    pub fn default_connections(&self) -> NonZeroUsize {
        let wanted = match self {
            LoadMode::Open(schedule) => (schedule.peak_rate().ceil() as usize)
                .clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS),
            LoadMode::Closed { concurrency } => concurrency.get(),
        };
        NonZeroUsize::new(wanted).unwrap_or(NonZeroUsize::MIN)
    }
}

impl SummaryHeader {
    fn for_spec(spec: &LoadSpec) -> Self {
        let (mode, target_rate, concurrency) = match &spec.mode {
            LoadMode::Open(schedule) => {
                let mean = schedule.expected_count(spec.duration) / spec.duration.as_secs_f64();
                ("open", Some(mean), None)
            }
            LoadMode::Closed { concurrency } => ("closed", None, Some(concurrency.get())),
        };
        SummaryHeader {
            name: spec.name.clone(),
            mode,
            target_rate,
            concurrency,
            duration: spec.duration,
        }
    }
}

/// Hands out request tickets; the only part of the engine that differs between modes.
#[derive(Debug)]
enum Pacer {
    Open {
        schedule: Schedule,
        baton: Baton,
        start: Duration,
        end: Duration,
        max_backlog: u64,
        next: AtomicU64,
    },
    Closed {
        start: Duration,
        end: Duration,
        next: AtomicU64,
    },
}

/// What a worker should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ticket {
    /// Send request `seq` at `at` (since run start); `corrected` when latency counts from `at`.
    Send {
        seq: u64,
        at: Duration,
        corrected: bool,
    },
    /// Request `seq`, due at `at`, is shed: the backlog is over its cap.
    Shed { seq: u64, at: Duration },
    /// The load is over.
    Done,
}

/// State every worker of one load shares.
struct Shared<S> {
    index: u16,
    run_start: Instant,
    client: Client,
    pacer: Pacer,
    sink: Arc<S>,
    tally: Tally,
    cancel: CancellationToken,
    /// Set once `cancel` fires, before `wake` wakes the workers: what a worker checks on each
    /// wake-up, one atomic load (the token's own check takes its lock).
    cancelled: AtomicBool,
    /// Cancelled after `cancelled` is set; each worker waits on it once.
    wake: CancellationToken,
    /// Set once the first request is shed, so the warning is logged once per load.
    shedding: AtomicBool,
}

/// Runs one load to its end (or until `cancel`), sending every settled request to `sink`.
///
/// `run_start` is the instant all of a run's times are relative to; several loads of a run share
/// it and run concurrently, each in its own `run_load`. On cancellation, requests still in
/// flight are abandoned and not recorded.
pub async fn run_load<S: SampleSink + 'static>(
    spec: LoadSpec,
    run_start: Instant,
    sink: Arc<S>,
    cancel: CancellationToken,
) -> Result<LoadSummary, LoadError> {
    for (field, value) in [("duration", spec.duration), ("timeout", spec.timeout)] {
        if value.is_zero() {
            return Err(LoadError::Zero {
                load: spec.name.clone(),
                field,
            });
        }
    }
    let host = spec.host.clone().unwrap_or_else(|| spec.target.to_string());
    let template = RequestTemplate::try_new(
        spec.method.clone(),
        &spec.path,
        &host,
        &spec.headers,
        spec.request_id_prefix.as_deref(),
        spec.index,
    )
    .map_err(|source| LoadError::Request {
        load: spec.name.clone(),
        source,
    })?;
    let (pacer, workers) = Pacer::for_spec(&spec);
    let header = SummaryHeader::for_spec(&spec);
    let template_histogram =
        Histogram::new_with_bounds(HISTOGRAM_LOW_US, HISTOGRAM_HIGH_US, HISTOGRAM_SIGFIG)?;
    let shared = Arc::new(Shared {
        index: spec.index,
        run_start,
        client: Client::new(spec.target, template, spec.timeout),
        pacer,
        sink,
        tally: Tally::new(&template_histogram),
        cancel,
        cancelled: AtomicBool::new(false),
        wake: CancellationToken::new(),
        shedding: AtomicBool::new(false),
    });
    tracing::debug!(load = %spec.name, target = %spec.target, workers, "load starting");
    // Turns the cancellation into the flag and the workers' wake-up; aborted with the set when
    // the load ends (or its future is dropped).
    let mut watcher = JoinSet::new();
    let watched = Arc::clone(&shared);
    watcher.spawn(async move {
        watched.cancel.cancelled().await;
        watched.cancelled.store(true, Ordering::Release);
        watched.wake.cancel();
    });
    let mut tasks = JoinSet::new();
    for slot in 0..workers {
        tasks.spawn(worker(Arc::clone(&shared), slot));
    }
    let mut panicked = false;
    while let Some(joined) = tasks.join_next().await {
        panicked |= joined.is_err();
    }
    if panicked {
        return Err(LoadError::WorkerPanicked { load: spec.name });
    }
    let summary = shared.tally.summarize(header);
    tracing::debug!(
        load = %summary.name,
        sent = summary.sent,
        responses = summary.responses,
        client_overloads = summary.client_overloads,
        "load finished"
    );
    Ok(summary)
}

/// One worker: one connection, requests until the pacer says done.
async fn worker<S: SampleSink>(shared: Arc<Shared<S>>, slot: usize) {
    let mut conn = Connection::new();
    // Polled once, this future wakes the worker's task when the load is cancelled; after that
    // the flag tells (polling it on every wake-up would take the token's lock each time).
    let woken = shared.wake.cancelled();
    tokio::pin!(woken);
    // A load cancelled before it started sends nothing, whether or not the watcher ran yet.
    if shared.cancel.is_cancelled()
        || poll_fn(|cx| Poll::Ready(woken.as_mut().poll(cx)))
            .await
            .is_ready()
    {
        return;
    }
    while let Some((seq, at, corrected)) = shared.next_send(slot).await {
        let sent_at = Instant::now();
        let send = shared.client.send(&mut conn, seq);
        tokio::pin!(send);
        let result = poll_fn(|cx| {
            if shared.cancelled.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            send.as_mut().poll(cx).map(Some)
        })
        .await;
        let Some(result) = result else { break };
        let done = Instant::now();
        let sent = sent_at.saturating_duration_since(shared.run_start);
        let intended = if corrected { at } else { sent };
        let latency = done.saturating_duration_since(shared.run_start + intended);
        let outcome = match result {
            Ok(info) => Outcome::Response(info),
            Err(kind) => Outcome::TransportError(kind),
        };
        shared.settle(slot, seq, intended, sent, latency, outcome);
    }
}

impl<S: SampleSink> Shared<S> {
    /// Waits until this worker's next request is due: `(seq, intended, corrected)`, or `None`
    /// when the load is over or cancelled. Open loop: only the baton holder waits on the
    /// schedule; shed tickets are settled here, while holding it.
    async fn next_send(&self, slot: usize) -> Option<(u64, Duration, bool)> {
        let _baton = match &self.pacer {
            Pacer::Open { baton, .. } => Some(tokio::select! {
                biased;
                () = self.cancel.cancelled() => return None,
                guard = baton.acquire() => guard,
            }),
            Pacer::Closed { .. } => None,
        };
        let mut shed: u32 = 0;
        loop {
            match self.pacer.next(self.run_start.elapsed()) {
                Ticket::Done => return None,
                Ticket::Shed { seq, at } => {
                    if !self.shedding.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            load = self.index,
                            "open-loop backlog over its cap: shedding requests as client overload"
                        );
                    }
                    let now = self.run_start.elapsed();
                    let waited = now.saturating_sub(at);
                    self.settle(slot, seq, at, now, waited, Outcome::ClientOverload);
                    // Shedding a deep backlog never awaits; let other tasks run now and then.
                    shed = shed.wrapping_add(1);
                    if shed % SHED_BATCH == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ticket::Send { seq, at, corrected } => {
                    let due = self.run_start + at;
                    if due > Instant::now() {
                        tokio::select! {
                            biased;
                            () = self.cancel.cancelled() => return None,
                            () = sleep_until(due) => {}
                        }
                    }
                    // Dropping the baton here hands the schedule to the next idle worker.
                    return Some((seq, at, corrected));
                }
            }
        }
    }

    fn settle(
        &self,
        slot: usize,
        seq: u64,
        intended: Duration,
        sent: Duration,
        latency: Duration,
        outcome: Outcome,
    ) {
        let sample = Sample {
            load: self.index,
            request_id: seq,
            intended,
            sent,
            latency,
            outcome,
        };
        self.tally.add(slot, &sample);
        self.sink.record(sample);
    }
}

impl Pacer {
    /// The pacer for `spec`'s mode, and how many workers it needs.
    fn for_spec(spec: &LoadSpec) -> (Pacer, usize) {
        let (start, end) = (spec.start, spec.start.saturating_add(spec.duration));
        match &spec.mode {
            LoadMode::Open(schedule) => {
                let pacer = Pacer::Open {
                    schedule: schedule.clone(),
                    baton: Baton::default(),
                    start,
                    end,
                    max_backlog: spec.max_backlog,
                    next: AtomicU64::new(0),
                };
                (pacer, spec.connections.get())
            }
            LoadMode::Closed { concurrency } => {
                let next = AtomicU64::new(0);
                (Pacer::Closed { start, end, next }, concurrency.get())
            }
        }
    }

    /// The next ticket, given the time since the run started.
    fn next(&self, now: Duration) -> Ticket {
        match self {
            Pacer::Open {
                schedule,
                start,
                end,
                max_backlog,
                next,
                ..
            } => {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let Some(offset) = schedule.intended(seq) else {
                    return Ticket::Done;
                };
                let at = start.saturating_add(offset);
                if at >= *end {
                    return Ticket::Done;
                }
                if at < now {
                    // Tickets due by now (capped at the load's end) minus those already taken.
                    let due = schedule.count_before(now.min(*end).saturating_sub(*start));
                    if due.saturating_sub(seq) > *max_backlog {
                        return Ticket::Shed { seq, at };
                    }
                }
                Ticket::Send {
                    seq,
                    at,
                    corrected: true,
                }
            }
            Pacer::Closed { start, end, next } => {
                if now >= *end {
                    return Ticket::Done;
                }
                Ticket::Send {
                    seq: next.fetch_add(1, Ordering::Relaxed),
                    at: now.max(*start),
                    corrected: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::schedule::Rate;

    const MS: Duration = Duration::from_millis(1);

    fn open_pacer(max_backlog: u64) -> Pacer {
        Pacer::Open {
            schedule: Schedule::constant(Rate::try_new(100.0).expect("rate")).expect("schedule"),
            baton: Baton::default(),
            start: 1000 * MS,
            end: 2000 * MS,
            max_backlog,
            next: AtomicU64::new(0),
        }
    }

    #[test]
    fn open_pacer_hands_out_the_schedule_then_stops() {
        let pacer = open_pacer(u64::MAX);
        let mut sends = 0;
        for expected in 0..100u64 {
            let ticket = pacer.next(Duration::ZERO);
            let at = 1000 * MS + 10 * MS * u32::try_from(expected).expect("small");
            assert_eq!(
                ticket,
                Ticket::Send {
                    seq: expected,
                    at,
                    corrected: true
                }
            );
            sends += 1;
        }
        assert_eq!(sends, 100);
        assert_eq!(pacer.next(Duration::ZERO), Ticket::Done);
        assert_eq!(pacer.next(5000 * MS), Ticket::Done);
    }

    #[test]
    fn open_pacer_sheds_only_beyond_the_backlog_cap() {
        let pacer = open_pacer(5);
        assert!(matches!(pacer.next(1000 * MS), Ticket::Send { seq: 0, .. }));
        // At 1.5s, 50 requests are due and only one was taken: 44 are shed, leaving 5 waiting.
        let now = 1500 * MS;
        let tickets: Vec<_> = (0..60).map(|_| pacer.next(now)).collect();
        let shed = tickets
            .iter()
            .filter(|t| matches!(t, Ticket::Shed { .. }))
            .count();
        assert_eq!(shed, 44);
        assert!(matches!(tickets[44], Ticket::Send { seq: 45, .. }));
        // Waiting tickets and future ones are sent, never shed.
        assert!(
            tickets[44..]
                .iter()
                .all(|t| matches!(t, Ticket::Send { .. }))
        );
    }

    #[test]
    fn closed_pacer_starts_at_start_and_stops_at_end() {
        let pacer = Pacer::Closed {
            start: 1000 * MS,
            end: 2000 * MS,
            next: AtomicU64::new(0),
        };
        assert_eq!(
            pacer.next(10 * MS),
            Ticket::Send {
                seq: 0,
                at: 1000 * MS,
                corrected: false
            }
        );
        assert_eq!(
            pacer.next(1500 * MS),
            Ticket::Send {
                seq: 1,
                at: 1500 * MS,
                corrected: false
            }
        );
        assert_eq!(pacer.next(2000 * MS), Ticket::Done);
    }
}
