//! Schedules probes for every host of a cluster and reports health transitions.
//!
//! Per host, as Envoy does: the first probe runs after a random delay in `[0, initial_jitter)`
//! (at once when the jitter is 0); each next probe is scheduled when the previous one finished
//! (answer or timeout), after `no_traffic_interval` until the cluster has seen traffic and after
//! `interval` from then on. Envoy decides the interval when it schedules the next probe, so
//! [`HealthCheckerHandle::mark_traffic`] takes effect from the probe after the pending wait.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::HealthCheckSpec;
use super::probe::{ProbeResult, Session, probe_session};
use super::state::HostHealthState;

/// Envoy's `health_check.*` stats of one cluster.
#[derive(Debug, Default)]
pub struct HealthCheckStats {
    /// `health_check.attempt`: probes started.
    pub attempt: AtomicU64,
    /// `health_check.success`.
    pub success: AtomicU64,
    /// `health_check.failure`: every failed probe (network ones included).
    pub failure: AtomicU64,
    /// `health_check.network_failure`: connect failures, resets and timeouts.
    pub network_failure: AtomicU64,
    /// `health_check.passive_failure`: hosts failed by `x-envoy-immediate-health-check-fail`.
    pub passive_failure: AtomicU64,
    /// `health_check.verify_cluster`: stays 0 (EG configures no service-name matcher).
    pub verify_cluster: AtomicU64,
    /// `health_check.healthy` gauge: hosts currently healthy by active checks.
    pub healthy: AtomicI64,
}

/// Called with a host index (after a successful probe, or one asking for exclusion).
type HostFn = Arc<dyn Fn(usize) + Send + Sync>;

/// Starts the per-host probe tasks (see [`HealthChecker::spawn`]).
#[derive(Debug)]
pub struct HealthChecker;

/// Owns the probe tasks: dropping it (or [`HealthCheckerHandle::shutdown`]) stops every probe.
#[derive(Debug)]
pub struct HealthCheckerHandle {
    tasks: Vec<JoinHandle<()>>,
    traffic: Arc<AtomicBool>,
    passive: Arc<[AtomicBool]>,
    first_done: watch::Receiver<usize>,
    hosts: usize,
}

impl HealthChecker {
    /// Spawns one probe task per host on the current tokio runtime. `on_transition(index,
    /// healthy)` is called on every change of a host's health (hosts start unhealthy, so a first
    /// success reports `true`); it must be quick (it runs on the probe task). `seed` drives the
    /// initial jitter.
    pub fn spawn<F>(
        spec: Arc<HealthCheckSpec>,
        hosts: Vec<SocketAddr>,
        on_transition: F,
        stats: Arc<HealthCheckStats>,
        seed: u64,
    ) -> HealthCheckerHandle
    where
        F: Fn(usize, bool) + Send + Sync + 'static,
    {
        Self::spawn_with_success(spec, hosts, on_transition, |_| {}, |_| {}, stats, seed)
    }

    /// Like [`HealthChecker::spawn`], also calling `on_success(index)` after every successful
    /// probe (Envoy un-ejects an outlier-ejected host on each successful check, §d.2) and
    /// `on_exclude(index)` when a failing answer carried `x-envoy-immediate-health-check-fail`.
    pub fn spawn_with_success<F, S, X>(
        spec: Arc<HealthCheckSpec>,
        hosts: Vec<SocketAddr>,
        on_transition: F,
        on_success: S,
        on_exclude: X,
        stats: Arc<HealthCheckStats>,
        seed: u64,
    ) -> HealthCheckerHandle
    where
        F: Fn(usize, bool) + Send + Sync + 'static,
        S: Fn(usize) + Send + Sync + 'static,
        X: Fn(usize) + Send + Sync + 'static,
    {
        Self::spawn_inner(
            spec,
            hosts,
            on_transition,
            (Arc::new(on_success), Arc::new(on_exclude)),
            stats,
            seed,
            |spec: Arc<HealthCheckSpec>, addr, mut session: Session| async move {
                let (result, exclude) = probe_session(&spec, addr, &mut session).await;
                (result, exclude, session)
            },
        )
    }

    /// Like [`HealthChecker::spawn`] with another prober (tests drive the schedule without sockets).
    #[cfg(test)]
    pub(crate) fn spawn_with<F, P, Fut>(
        spec: Arc<HealthCheckSpec>,
        hosts: Vec<SocketAddr>,
        on_transition: F,
        stats: Arc<HealthCheckStats>,
        seed: u64,
        prober: P,
    ) -> HealthCheckerHandle
    where
        F: Fn(usize, bool) + Send + Sync + 'static,
        P: Fn(Arc<HealthCheckSpec>, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ProbeResult> + Send + 'static,
    {
        let prober = Arc::new(prober);
        Self::spawn_inner(
            spec,
            hosts,
            on_transition,
            (Arc::new(|_| {}), Arc::new(|_| {})),
            stats,
            seed,
            move |spec, addr, session| {
                let run = prober(spec, addr);
                async move { (run.await, false, session) }
            },
        )
    }

    fn spawn_inner<F, P, Fut>(
        spec: Arc<HealthCheckSpec>,
        hosts: Vec<SocketAddr>,
        on_transition: F,
        (on_success, on_exclude): (HostFn, HostFn),
        stats: Arc<HealthCheckStats>,
        seed: u64,
        prober: P,
    ) -> HealthCheckerHandle
    where
        F: Fn(usize, bool) + Send + Sync + 'static,
        P: Fn(Arc<HealthCheckSpec>, SocketAddr, Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (ProbeResult, bool, Session)> + Send + 'static,
    {
        let prober = Arc::new(prober);
        let on_transition = Arc::new(on_transition);
        let traffic = Arc::new(AtomicBool::new(false));
        let passive: Arc<[AtomicBool]> = hosts.iter().map(|_| AtomicBool::new(false)).collect();
        let (first_tx, first_done) = watch::channel(0usize);
        let first_tx = Arc::new(first_tx);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let jitter_ms = u64::try_from(spec.initial_jitter.as_millis()).unwrap_or(u64::MAX);
        let tasks = hosts
            .iter()
            .enumerate()
            .map(|(index, &addr)| {
                // Envoy: random() % initial_jitter in milliseconds.
                let jitter = if jitter_ms > 0 {
                    Duration::from_millis(rng.random_range(0..jitter_ms))
                } else {
                    Duration::ZERO
                };
                let host = HostTask {
                    index,
                    addr,
                    jitter,
                    spec: spec.clone(),
                    stats: stats.clone(),
                    traffic: traffic.clone(),
                    passive: passive.clone(),
                    on_transition: on_transition.clone(),
                    on_success: on_success.clone(),
                    on_exclude: on_exclude.clone(),
                    first_tx: first_tx.clone(),
                    prober: prober.clone(),
                };
                tokio::spawn(host.run())
            })
            .collect();
        HealthCheckerHandle {
            tasks,
            traffic,
            passive,
            first_done,
            hosts: hosts.len(),
        }
    }
}

impl HealthCheckerHandle {
    /// The cluster has seen traffic: later probes use `interval` instead of `no_traffic_interval`.
    pub fn mark_traffic(&self) {
        self.traffic.store(true, Ordering::Relaxed);
    }

    /// A handle to [`HealthCheckerHandle::mark_traffic`] that outlives no task: the request
    /// path keeps it and flips it once.
    pub fn traffic_marker(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.traffic)
    }

    /// Per host: a passive failure the host's state machine has yet to apply. The request path
    /// sets it (after failing the host itself, see `Cluster::immediate_health_check_fail`); the
    /// host's task applies it before its next probe result.
    pub fn passive_failures(&self) -> Arc<[AtomicBool]> {
        Arc::clone(&self.passive)
    }

    /// Resolves once every host has had its first probe result (Envoy's cluster warming waits
    /// for this before the cluster serves).
    pub async fn initialized(&self) {
        let mut rx = self.first_done.clone();
        let hosts = self.hosts;
        // An error means every task is gone; nothing more will arrive.
        let _ = rx.wait_for(|done| *done >= hosts).await;
    }

    /// Stops every probe task.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for HealthCheckerHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl HealthCheckStats {
    /// `(envoy stat name, value)` pairs.
    pub fn snapshot(&self) -> [(&'static str, i64); 7] {
        let c = |a: &AtomicU64| i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        [
            ("health_check.attempt", c(&self.attempt)),
            ("health_check.success", c(&self.success)),
            ("health_check.failure", c(&self.failure)),
            ("health_check.network_failure", c(&self.network_failure)),
            ("health_check.passive_failure", c(&self.passive_failure)),
            ("health_check.verify_cluster", c(&self.verify_cluster)),
            ("health_check.healthy", self.healthy.load(Ordering::Relaxed)),
        ]
    }
}

struct HostTask<F, P> {
    index: usize,
    addr: SocketAddr,
    jitter: Duration,
    spec: Arc<HealthCheckSpec>,
    stats: Arc<HealthCheckStats>,
    traffic: Arc<AtomicBool>,
    passive: Arc<[AtomicBool]>,
    on_transition: Arc<F>,
    on_success: HostFn,
    on_exclude: HostFn,
    first_tx: Arc<watch::Sender<usize>>,
    prober: Arc<P>,
}

impl<F, P, Fut> HostTask<F, P>
where
    F: Fn(usize, bool) + Send + Sync + 'static,
    P: Fn(Arc<HealthCheckSpec>, SocketAddr, Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (ProbeResult, bool, Session)> + Send + 'static,
{
    async fn run(self) {
        let mut state =
            HostHealthState::new(self.spec.healthy_threshold, self.spec.unhealthy_threshold);
        if !self.jitter.is_zero() {
            tokio::time::sleep(self.jitter).await;
        }
        // The host's health-check connection, reused between probes as Envoy does.
        let mut session = Session::default();
        loop {
            self.stats.attempt.fetch_add(1, Ordering::Relaxed);
            let (result, exclude, kept) =
                (self.prober)(self.spec.clone(), self.addr, session).await;
            session = kept;
            if exclude {
                (self.on_exclude)(self.index);
            }
            match result {
                ProbeResult::Success => {
                    self.stats.success.fetch_add(1, Ordering::Relaxed);
                    (self.on_success)(self.index);
                }
                failure => {
                    self.stats.failure.fetch_add(1, Ordering::Relaxed);
                    if failure.is_network() {
                        self.stats.network_failure.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let was_pending = state.is_pending();
            if self.passive[self.index].swap(false, Ordering::AcqRel)
                && state.on_passive_failure().is_some()
            {
                // The request path already failed the host; only the gauge follows.
                self.stats.healthy.fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(t) = state.on_probe(result) {
                let delta = if t.healthy { 1 } else { -1 };
                self.stats.healthy.fetch_add(delta, Ordering::Relaxed);
                tracing::info!(host = %self.addr, healthy = t.healthy, ?result, "active health check transition");
                (self.on_transition)(self.index, t.healthy);
            }
            if was_pending {
                self.first_tx.send_modify(|done| *done += 1);
            }
            let wait = if self.traffic.load(Ordering::Relaxed) {
                self.spec.interval
            } else {
                self.spec.no_traffic_interval
            };
            tokio::time::sleep(wait).await;
        }
    }
}
