//! The docker runtime's backends: every replica of every scenario backend in containers on the
//! run's private network, and the mapping of scenario faults onto them (the docker mirror of
//! [`EmbeddedBackends`](crate::runtime::backends::EmbeddedBackends)).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;

use mock_backends::Fault;
use tokio::sync::Mutex;

use super::cleanup::{Removed, RunGuard, remove_run};
use super::container::{
    Published, ReplicaContainers, ReplicaLaunch, ServiceContainer, ServiceLaunch, TRAFFIC_PORT,
};
use super::control;
use super::engine::{DockerError, Engine};
use super::image::RuntimeImage;
use super::network::RunNetwork;
use super::run_id::RunId;
use crate::chaos::timeline::FaultTarget;
use crate::runtime::backends::{mock_latency, replica_config};
use crate::scenario::spec::{FaultKind, ScenarioSpec};

/// Every replica of every backend of a scenario, in containers.
#[derive(Debug)]
pub struct DockerBackends {
    engine: Engine,
    image: String,
    run: RunId,
    network: RunNetwork,
    replicas: Vec<DockerReplica>,
    guard: RunGuard,
}

/// One replica's containers and what is currently done to them.
#[derive(Debug)]
pub struct DockerReplica {
    /// `ns/name` of the backend (Service).
    pub backend: String,
    /// Replica index.
    pub index: usize,
    /// The containers.
    pub containers: ReplicaContainers,
    /// Serialises fault changes on this replica; held across engine calls on purpose (this is
    /// the control path, a few changes per run, never the request path).
    state: Mutex<ReplicaState>,
}

/// The container-level side of a replica's faults, as last applied.
#[derive(Debug, Clone, PartialEq, Default)]
struct ReplicaState {
    killed: bool,
    paused: bool,
    partitioned: bool,
    /// The replica container was started and has not answered `/ready` since.
    starting: bool,
    /// The fault set the running process has; a fresh process has none.
    applied: Vec<Fault>,
    /// Host ports of the sandbox; `None` while it is off the network.
    published: Option<Published>,
}

/// The state a replica's fault set asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    /// The replica container is stopped.
    pub killed: bool,
    /// The replica container is frozen.
    pub paused: bool,
    /// The sandbox is off the run network.
    pub partitioned: bool,
    /// Faults the replica process plays itself (through its control endpoint).
    pub behaviours: Vec<Fault>,
}

impl DockerBackends {
    /// Creates the run network and starts every replica on it. A failure part-way removes
    /// whatever was created (through the run guard) before returning the error.
    pub async fn start(
        engine: &Engine,
        image: &RuntimeImage,
        run: RunId,
        spec: &ScenarioSpec,
    ) -> Result<DockerBackends, DockerError> {
        // Armed first, so an early return below removes the network and containers.
        let guard = RunGuard::new(run.as_str(), engine.host());
        let network = RunNetwork::create(engine, run.as_str()).await?;
        let mut out = DockerBackends {
            engine: engine.clone(),
            image: image.tag.clone(),
            run,
            network,
            replicas: Vec::new(),
            guard,
        };
        let mut planned = Vec::new();
        for backend in &spec.backends {
            for index in 0..backend.replicas {
                let config = replica_config(spec, backend, index);
                planned.push((out.network.allocate()?, config));
            }
        }
        // Replicas start concurrently: engine calls dominate the start-up time.
        let launches = planned.iter().map(|(ip, config)| {
            let launch = ReplicaLaunch {
                image: &image.tag,
                run: out.run.as_str(),
                network: out.network.name(),
                ip: *ip,
                config,
            };
            let engine = &out.engine;
            async move {
                let containers = ReplicaContainers::launch(engine, &launch).await?;
                let published = containers.published(engine).await?;
                let replica = format!("{}/{}#{}", config.namespace, config.backend, config.replica);
                control::wait_ready(published.control)
                    .await
                    .map_err(|message| DockerError::Control { replica, message })?;
                Ok::<_, DockerError>(DockerReplica {
                    backend: format!("{}/{}", config.namespace, config.backend),
                    index: config.replica,
                    containers,
                    state: Mutex::new(ReplicaState {
                        published: Some(published),
                        ..ReplicaState::default()
                    }),
                })
            }
        });
        let replicas = futures_util::future::try_join_all(launches).await?;
        out.replicas = replicas;
        Ok(out)
    }

    /// Starts another container of the run (the proxy) on the run network, with the runtime
    /// image; shutdown and the guard remove it with the rest.
    pub async fn start_service(
        &mut self,
        launch: &ServiceLaunch<'_>,
    ) -> Result<ServiceContainer, DockerError> {
        let ip = self.network.allocate()?;
        ServiceContainer::launch(
            &self.engine,
            &self.image,
            self.run.as_str(),
            self.network.name(),
            ip,
            launch,
        )
        .await
    }

    /// The run id.
    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// The name of the run network (what a proxy container joins).
    pub fn network_name(&self) -> &str {
        self.network.name()
    }

    /// The addresses of `backend`'s (`ns/name`) replicas on the run network, by replica: what
    /// the proxy, in a container on the same network, connects to.
    pub fn endpoints(&self, backend: &str) -> Vec<(usize, SocketAddr)> {
        self.replicas
            .iter()
            .filter(|r| r.backend == backend)
            .map(|r| (r.index, SocketAddr::from((r.containers.ip, TRAFFIC_PORT))))
            .collect()
    }

    /// Every replica.
    pub fn replicas(&self) -> &[DockerReplica] {
        &self.replicas
    }

    /// The ports a replica's sandbox publishes on 127.0.0.1, if it is on the network.
    pub async fn published(&self, backend: &str, index: usize) -> Option<Published> {
        self.find(backend, index)?.state.lock().await.published
    }

    fn find(&self, backend: &str, index: usize) -> Option<&DockerReplica> {
        self.replicas
            .iter()
            .find(|r| r.backend == backend && r.index == index)
    }

    /// Removes every container and the network. Leftovers that cannot be removed are left to
    /// the guard's second attempt and to the next run's sweep.
    pub async fn shutdown(mut self) -> Result<Removed, DockerError> {
        let removed = remove_run(&self.engine, self.run.as_str()).await?;
        self.network.remove(&self.engine).await?;
        self.guard.disarm();
        Ok(removed)
    }
}

impl DockerReplica {
    /// `ns/name#index`, for messages.
    pub fn name(&self) -> String {
        format!("{}#{}", self.backend, self.index)
    }

    /// The replica's address on the run network.
    pub fn ip(&self) -> Ipv4Addr {
        self.containers.ip
    }

    /// Moves the containers from their current state to `want`, in an order that keeps the
    /// replica's own faults right whenever it can be reached: behaviours are sent before a
    /// container fault hides the replica and again as soon as it is back (a fresh process after
    /// a kill has none). While killed, paused or partitioned the control endpoint cannot be
    /// reached, and nothing could observe the behaviours anyway.
    async fn converge(
        &self,
        engine: &Engine,
        network: &str,
        want: &Desired,
    ) -> Result<(), DockerError> {
        let mut state = self.state.lock().await;
        self.sync_behaviours(&mut state, want).await?;
        if want.partitioned && !state.partitioned {
            self.containers.disconnect(engine, network).await?;
            state.partitioned = true;
            state.published = None;
        } else if !want.partitioned && state.partitioned {
            self.containers.connect(engine, network).await?;
            state.partitioned = false;
            state.published = Some(self.containers.published(engine).await?);
        }
        if want.killed && !state.killed {
            self.containers.kill(engine).await?;
            state.killed = true;
            state.paused = false;
            state.applied.clear();
        } else if !want.killed && state.killed {
            self.containers.start(engine).await?;
            state.killed = false;
            state.starting = true;
        }
        // Before a pause, so the frozen replica holds the right behaviours when it thaws.
        self.sync_behaviours(&mut state, want).await?;
        if !state.killed && want.paused != state.paused {
            if want.paused {
                self.containers.pause(engine).await?;
            } else {
                self.containers.unpause(engine).await?;
            }
            state.paused = want.paused;
        }
        self.sync_behaviours(&mut state, want).await
    }

    /// Sends `want.behaviours` to the replica when it can be reached and has others; waits for a
    /// freshly started replica to be ready, so a fault change returns once it serves again.
    async fn sync_behaviours(
        &self,
        state: &mut ReplicaState,
        want: &Desired,
    ) -> Result<(), DockerError> {
        let reachable = !state.killed && !state.paused && !state.partitioned;
        let Some(published) = state.published.filter(|_| reachable) else {
            return Ok(());
        };
        let control_error = |message| DockerError::Control {
            replica: self.name(),
            message,
        };
        if state.starting {
            control::wait_ready(published.control)
                .await
                .map_err(control_error)?;
            state.starting = false;
        }
        if state.applied == want.behaviours {
            return Ok(());
        }
        control::put_faults(published.control, &want.behaviours)
            .await
            .map_err(control_error)?;
        state.applied = want.behaviours.clone();
        Ok(())
    }
}

/// How the docker runtime realises a fault set: `kill`, `pause` and `partition` on the
/// containers, everything else (including `reset`: a real RST from the replica) by the replica.
pub fn desired(active: &[FaultKind]) -> Desired {
    let mut out = Desired::default();
    for kind in active {
        match *kind {
            FaultKind::Latency(dist) => out.behaviours.push(Fault::Latency(mock_latency(&dist))),
            FaultKind::Error { status, rate } => out.behaviours.push(Fault::Error { status, rate }),
            FaultKind::Hang => out.behaviours.push(Fault::Hang),
            FaultKind::Reset => out.behaviours.push(Fault::Reset),
            FaultKind::SlowBody { bytes_per_second } => {
                out.behaviours.push(Fault::SlowBody { bytes_per_second })
            }
            FaultKind::Unhealthy => out.behaviours.push(Fault::Unhealthy),
            FaultKind::Kill => out.killed = true,
            FaultKind::Pause => out.paused = true,
            FaultKind::Partition => out.partitioned = true,
        }
    }
    out
}

impl FaultTarget for DockerBackends {
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
            running
                .converge(&self.engine, self.network.name(), &desired(active))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
