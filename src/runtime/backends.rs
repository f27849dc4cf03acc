//! The embedded runtime's backends: one in-process mock replica per scenario replica, each
//! behind its own fault relay, and the mapping of scenario faults onto them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use mock_backends::{Fault, Replica, ReplicaConfig, ReplicaHandle};

use crate::chaos::relay::{Relay, RelayFaults};
use crate::chaos::timeline::FaultTarget;
use crate::scenario::spec::{BackendSpec, FaultKind, LatencyDist, ScenarioSpec};

/// One running replica and the relay the proxy reaches it through.
#[derive(Debug)]
pub struct RunningReplica {
    /// `ns/name` of the backend (Service).
    pub backend: String,
    pub index: usize,
    pub replica: ReplicaHandle,
    pub relay: Relay,
}

/// Every replica of every backend of a scenario.
#[derive(Debug, Default)]
pub struct EmbeddedBackends {
    pub replicas: Vec<RunningReplica>,
}

impl EmbeddedBackends {
    /// Starts all replicas on loopback ports, each behind a relay; on failure the ones already
    /// started are stopped (dropped) before the error is returned.
    pub async fn start(spec: &ScenarioSpec) -> Result<EmbeddedBackends, String> {
        let mut out = EmbeddedBackends::default();
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        for backend in &spec.backends {
            for index in 0..backend.replicas {
                let config = replica_config(spec, backend, index);
                let key = format!("{}/{}", backend.namespace, backend.name);
                let replica = Replica::start(config, loopback)
                    .await
                    .map_err(|e| format!("backend {key} replica {index}: {e}"))?;
                let relay = Relay::start(loopback, replica.addr())
                    .await
                    .map_err(|e| format!("relay for backend {key} replica {index}: {e}"))?;
                out.replicas.push(RunningReplica {
                    backend: key,
                    index,
                    replica,
                    relay,
                });
            }
        }
        Ok(out)
    }

    /// The addresses the proxy should use for `backend` (`ns/name`): the relays, by replica.
    pub fn endpoints(&self, backend: &str) -> Vec<(usize, SocketAddr)> {
        self.replicas
            .iter()
            .filter(|r| r.backend == backend)
            .map(|r| (r.index, r.relay.addr()))
            .collect()
    }

    fn find(&self, backend: &str, index: usize) -> Option<&RunningReplica> {
        self.replicas
            .iter()
            .find(|r| r.backend == backend && r.index == index)
    }

    /// Stops every replica and relay.
    pub async fn shutdown(self) {
        for r in self.replicas {
            drop(r.relay);
            r.replica.shutdown().await;
        }
    }
}

/// How the embedded runtime realises each fault: backend behaviours in the mock replica,
/// network faults in the relay (kill does both: the replica stops and connects are refused).
fn split_faults(active: &[FaultKind]) -> (Vec<Fault>, RelayFaults) {
    let mut mock = Vec::new();
    let mut relay = RelayFaults::default();
    for kind in active {
        match *kind {
            FaultKind::Latency(dist) => mock.push(Fault::Latency(mock_latency(&dist))),
            FaultKind::Error { status, rate } => mock.push(Fault::Error { status, rate }),
            FaultKind::Hang => mock.push(Fault::Hang),
            FaultKind::SlowBody { bytes_per_second } => {
                mock.push(Fault::SlowBody { bytes_per_second })
            }
            FaultKind::Unhealthy => mock.push(Fault::Unhealthy),
            FaultKind::Reset => relay.reset = true,
            FaultKind::Pause | FaultKind::Partition => relay.stall = true,
            FaultKind::Kill => {
                mock.push(Fault::Kill);
                relay.refuse = true;
            }
        }
    }
    (mock, relay)
}

/// The mock replica for `backend`'s replica `index`, in any runtime.
pub fn replica_config(spec: &ScenarioSpec, backend: &BackendSpec, index: usize) -> ReplicaConfig {
    ReplicaConfig {
        backend: backend.name.clone(),
        namespace: backend.namespace.clone(),
        replica: index,
        latency: mock_latency(&backend.latency),
        error_rate: backend.error_rate,
        error_status: backend.error_status,
        health_path: backend.health_path.clone(),
        seed: spec.seed,
    }
}

/// A scenario latency distribution as the mock backends take it.
pub fn mock_latency(dist: &LatencyDist) -> mock_backends::LatencyDist {
    match *dist {
        LatencyDist::Fixed(d) => mock_backends::LatencyDist::Fixed(d),
        LatencyDist::Uniform { min, max } => mock_backends::LatencyDist::Uniform { min, max },
        LatencyDist::LogNormal { p50, p99 } => mock_backends::LatencyDist::LogNormal { p50, p99 },
    }
}

impl FaultTarget for EmbeddedBackends {
    fn apply<'a>(
        &'a self,
        backend: &'a str,
        replica: usize,
        active: &'a [FaultKind],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let running = self
                .find(backend, replica)
                .ok_or_else(|| format!("no replica {replica} of {backend}"))?;
            let (mock, relay) = split_faults(active);
            running
                .replica
                .set_faults(mock)
                .map_err(|e| e.to_string())?;
            running.relay.set_faults(relay);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn network_faults_go_to_the_relay_and_behaviours_to_the_replica() {
        let (mock, relay) = split_faults(&[
            FaultKind::Partition,
            FaultKind::Latency(LatencyDist::Fixed(Duration::from_millis(5))),
            FaultKind::Kill,
        ]);
        assert_eq!(
            mock,
            vec![
                Fault::Latency(mock_backends::LatencyDist::Fixed(Duration::from_millis(5))),
                Fault::Kill
            ]
        );
        assert_eq!(
            relay,
            RelayFaults {
                stall: true,
                refuse: true,
                ..RelayFaults::default()
            }
        );
        let (mock, relay) = split_faults(&[FaultKind::Reset]);
        assert!(mock.is_empty());
        assert!(relay.reset);
    }
}
