//! Where a run's backends and proxy live: in this process (embedded) or in containers
//! (docker). The run loop sees one interface; each variant keeps its runtime's details.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::RuntimeKind;
use super::join::Joiner;
use super::sampler::StatsSource;
use crate::chaos::timeline::FaultTarget;
use crate::policy::objects::ObjectSet;
use crate::proxy::{Proxy, ProxyHandle};
use crate::runtime::backends::EmbeddedBackends;
use crate::runtime::compile::{Compiled, EndpointSource};
use crate::runtime::docker::{
    DockerBackends, Engine, ProxyContainer, ProxyLaunch, RunId, endpoint_slices, prepare,
};
use crate::scenario::spec::ScenarioSpec;

/// A run's backends.
pub(super) enum RunBackends {
    /// In-process replicas behind relays.
    Embedded(EmbeddedBackends),
    /// Replicas in containers.
    Docker(Box<DockerRun>),
}

/// The docker side of a run; the endpoints file the proxy container reads is removed with it
/// (a `TempDir`, so also when the run ends by an error or a panic).
pub(super) struct DockerRun {
    engine: Engine,
    backends: DockerBackends,
    work_dir: Option<tempfile::TempDir>,
}

/// A run's proxy.
pub(super) enum RunProxy {
    /// The proxy in this process.
    Embedded(ProxyHandle),
    /// The proxy in a container of the run; `None` once stopped.
    Docker(Option<ProxyContainer>),
}

impl RunBackends {
    /// Starts the backends of `spec` in `kind`. For docker this finds the engine, prepares the
    /// image and starts the run network and replica containers; Ctrl-C meanwhile abandons the
    /// start (the run guard removes what was created).
    pub async fn start(
        kind: RuntimeKind,
        spec: &ScenarioSpec,
        cancel: &CancellationToken,
    ) -> Result<RunBackends, String> {
        match kind {
            RuntimeKind::Embedded => {
                Ok(RunBackends::Embedded(EmbeddedBackends::start(spec).await?))
            }
            RuntimeKind::Docker => {
                let start = async {
                    let engine = Engine::connect()
                        .await
                        .map_err(|e| format!("docker runtime: {e}"))?;
                    let image = prepare(&engine)
                        .await
                        .map_err(|e| format!("docker runtime: {e}"))?;
                    let backends = DockerBackends::start(&engine, &image, RunId::generate(), spec)
                        .await
                        .map_err(|e| format!("docker runtime: {e}"))?;
                    Ok::<_, String>(RunBackends::Docker(Box::new(DockerRun {
                        engine,
                        backends,
                        work_dir: None,
                    })))
                };
                tokio::select! {
                    started = start => started,
                    _ = cancel.cancelled() => Err("interrupted (Ctrl-C) while starting".to_string()),
                }
            }
        }
    }

    /// The name of the runtime, as results record it.
    pub fn name(&self) -> &'static str {
        match self {
            RunBackends::Embedded(_) => "embedded",
            RunBackends::Docker(_) => "docker",
        }
    }

    /// Where faults are applied.
    pub fn fault_target(&self) -> &dyn FaultTarget {
        match self {
            RunBackends::Embedded(b) => b,
            RunBackends::Docker(run) => &run.backends,
        }
    }

    /// Starts the proxy for `compiled` with access log entries going to `joiner`. `scenario`
    /// is the scenario file and `objects` what was loaded from it: the docker proxy compiles
    /// the same files again, in its container.
    pub async fn start_proxy(
        &mut self,
        compiled: &Compiled,
        scenario: &Path,
        objects: &ObjectSet,
        seed: u64,
        joiner: Arc<Joiner>,
    ) -> Result<RunProxy, String> {
        match self {
            RunBackends::Embedded(_) => {
                let binds: Vec<(String, SocketAddr)> = compiled
                    .listeners
                    .iter()
                    .map(|l| (l.name.clone(), ([127, 0, 0, 1], 0).into()))
                    .collect();
                Proxy::builder(compiled.config.clone())
                    .access_log_sink(joiner)
                    .start(binds, Some(([127, 0, 0, 1], 0).into()))
                    .await
                    .map(RunProxy::Embedded)
                    .map_err(|e| format!("cannot start the proxy: {e}"))
            }
            RunBackends::Docker(run) => {
                let DockerRun {
                    engine,
                    backends,
                    work_dir,
                } = &mut **run;
                let dir = tempfile::Builder::new()
                    .prefix(&format!("chaosgate-{}-", backends.run().as_str()))
                    .tempdir()
                    .map_err(|e| format!("cannot create the proxy's work folder: {e}"))?;
                let endpoints = write_endpoints(dir.path(), &endpoint_slices(backends))
                    .map_err(|e| format!("cannot write the proxy's endpoints: {e}"))?;
                *work_dir = Some(dir);
                let mut mounts = vec![(path_text(&endpoints)?, ENDPOINTS_PATH.to_owned())];
                for file in input_files(scenario, objects) {
                    let host = file
                        .canonicalize()
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let mount = (path_text(&host)?, path_text(&container_path(&file)?)?);
                    if !mounts.contains(&mount) {
                        mounts.push(mount);
                    }
                }
                let listeners: Vec<String> =
                    compiled.listeners.iter().map(|l| l.name.clone()).collect();
                let launch = ProxyLaunch {
                    mounts,
                    files: vec![
                        path_text(&container_path(scenario)?)?,
                        ENDPOINTS_PATH.to_owned(),
                    ],
                    listeners: &listeners,
                    seed,
                };
                ProxyContainer::start(backends, engine, &launch, joiner)
                    .await
                    .map(|p| RunProxy::Docker(Some(p)))
                    .map_err(|e| format!("cannot start the proxy: {e}"))
            }
        }
    }

    /// Stops every backend (docker: removes the run's containers and network).
    pub async fn shutdown(self) {
        match self {
            RunBackends::Embedded(b) => b.shutdown().await,
            RunBackends::Docker(run) => {
                let DockerRun {
                    backends, work_dir, ..
                } = *run;
                if let Err(e) = backends.shutdown().await {
                    eprintln!("warning: removing the run's containers: {e}");
                }
                drop(work_dir);
            }
        }
    }
}

impl EndpointSource for RunBackends {
    fn endpoints(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        _port: Option<u16>,
    ) -> Vec<(SocketAddr, usize)> {
        if kind != "Service" {
            return Vec::new();
        }
        let backend = format!("{namespace}/{name}");
        let found = match self {
            // The relays in front of the replicas.
            RunBackends::Embedded(b) => b.endpoints(&backend),
            // The replicas on the run network, as the proxy container sees them.
            RunBackends::Docker(run) => run.backends.endpoints(&backend),
        };
        found
            .into_iter()
            .map(|(replica, addr)| (addr, replica))
            .collect()
    }
}

impl RunProxy {
    /// The address loads aim at for listener `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        match self {
            RunProxy::Embedded(p) => p.listener_addr(name),
            RunProxy::Docker(p) => p.as_ref()?.listener_addr(name),
        }
    }

    /// Where the sampler reads the proxy's stats.
    pub fn stats_source(&self, compiled: &Compiled) -> StatsSource {
        match self {
            RunProxy::Embedded(p) => StatsSource::InProcess(p.stats().clone()),
            RunProxy::Docker(p) => StatsSource::Http {
                // Unreachable once stopped: a source nobody answers on samples nothing.
                addr: p
                    .as_ref()
                    .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |p| p.stats_addr()),
                clusters: compiled
                    .config
                    .clusters
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
                listeners: compiled
                    .config
                    .listeners
                    .iter()
                    .map(|l| l.name.clone())
                    .collect(),
            },
        }
    }

    /// The proxy's final counters; the docker proxy is stopped here too, so every access log
    /// entry has reached the joiner when this returns.
    pub async fn final_stats(&mut self, source: &StatsSource) -> BTreeMap<String, u64> {
        match self {
            RunProxy::Embedded(p) => p.stats().snapshot(),
            RunProxy::Docker(p) => {
                let stats = source.snapshot().await.unwrap_or_default();
                if let Some(p) = p.take() {
                    p.stop().await;
                }
                stats
            }
        }
    }

    /// Stops the proxy.
    pub async fn shutdown(self) {
        match self {
            RunProxy::Embedded(p) => p.shutdown().await,
            RunProxy::Docker(Some(p)) => p.stop().await,
            RunProxy::Docker(None) => {}
        }
    }
}

/// Where the replicas' EndpointSlices are mounted in the proxy container.
const ENDPOINTS_PATH: &str = "/chaosgate-endpoints.yaml";

/// Writes the replicas' EndpointSlices into `dir/endpoints.yaml`, readable by the container's
/// unprivileged user; returns its absolute path.
fn write_endpoints(dir: &Path, slices: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("endpoints.yaml");
    std::fs::write(&path, slices)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    std::path::absolute(&path)
}

/// The files a scenario's objects came from, as the loader named them: the scenario file and
/// every file a Scenario document includes (`spec.manifests`, relative to its own file).
fn input_files(scenario: &Path, objects: &ObjectSet) -> Vec<PathBuf> {
    let mut out = vec![scenario.to_path_buf()];
    for doc in &objects.scenarios {
        let base = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let includes = doc.doc.value["spec"]["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str);
        out.extend(includes.map(|relative| base.join(relative)));
    }
    out
}

/// Where a host input file is mounted in the container: its absolute path with `.` and `..`
/// resolved by name, which is how the container (no symlinks on those paths) resolves the
/// includes of a scenario given there by its absolute path.
fn container_path(file: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn path_text(path: &Path) -> Result<String, String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        format!(
            "{} is not UTF-8: the engine needs text paths",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_resolve_dots_by_name() {
        let p = container_path(Path::new("/a/b/./c/../../d/s.yaml")).unwrap();
        assert_eq!(p, PathBuf::from("/a/d/s.yaml"));
        let relative = container_path(Path::new("x.yaml")).unwrap();
        assert!(relative.is_absolute() && relative.ends_with("x.yaml"));
    }
}
