//! What every connection of a replica shares: the compiled configuration, the active faults and the
//! counters. It outlives kill/restart cycles, so faults and counters carry over.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::config::{ConfigError, ReplicaConfig};
use crate::fault::{ActiveFaults, final_status};
use crate::latency::Sampler;
use crate::stats::Counters;

/// Spreads replica indexes over the seed space (the 64-bit golden ratio).
const REPLICA_MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Shared state of one replica.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ReplicaConfig,
    /// `x-chaosgate-backend: <namespace>/<backend>`.
    pub(crate) backend_header: HeaderValue,
    /// `x-chaosgate-replica: <index>`.
    pub(crate) replica_header: HeaderValue,
    /// `ok <backend>/<replica>\n`.
    pub(crate) ok_body: Bytes,
    pub(crate) latency: Sampler,
    pub(crate) error_rate: f64,
    pub(crate) error_status: StatusCode,
    /// Unused generator of the replica's seed; each request clones it onto its own stream.
    base_rng: ChaCha8Rng,
    /// Readers take a cheap snapshot per request; `hang`/`kill` waiters watch for changes.
    pub(crate) faults: watch::Sender<Arc<ActiveFaults>>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn try_new(config: ReplicaConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let name_error = |field: &'static str, value: &str| ConfigError::InvalidName {
            field,
            value: value.to_owned(),
        };
        let backend_header =
            HeaderValue::try_from(format!("{}/{}", config.namespace, config.backend))
                .map_err(|_| name_error("backend", &config.backend))?;
        let replica_header = HeaderValue::from(config.replica);
        let error_status = final_status(config.error_status)
            .ok_or(ConfigError::InvalidErrorStatus(config.error_status))?;
        let seed = config.seed.wrapping_add(
            (config.replica as u64)
                .wrapping_add(1)
                .wrapping_mul(REPLICA_MIX),
        );
        let (faults, _) = watch::channel(Arc::new(ActiveFaults::default()));
        Ok(Self {
            ok_body: Bytes::from(format!("ok {}/{}\n", config.backend, config.replica)),
            latency: config.latency.sampler(),
            error_rate: config.error_rate,
            backend_header,
            replica_header,
            error_status,
            base_rng: ChaCha8Rng::seed_from_u64(seed),
            faults,
            counters: Counters::default(),
            config,
        })
    }

    /// The generator of the next request: the replica's seed on a stream of its own, so no lock
    /// is shared between requests and the n-th request always draws the same numbers.
    pub(crate) fn request_rng(&self) -> ChaCha8Rng {
        let mut rng = self.base_rng.clone();
        rng.set_stream(self.counters.next_sequence());
        rng
    }

    pub(crate) fn faults(&self) -> Arc<ActiveFaults> {
        self.faults.borrow().clone()
    }

    /// Returns once no `hang` fault is active; counts the wait as hanging.
    pub(crate) async fn wait_while_hung(&self) {
        if !self.faults.borrow().hang {
            return;
        }
        let _hanging = self.counters.hanging();
        let mut faults = self.faults.subscribe();
        // The sender lives in `self`, so this cannot see a closed channel.
        let _ = faults.wait_for(|f| !f.hang).await;
    }
}
