//! Removing what a run started: at shutdown, from a guard when a run is abandoned (early return,
//! panic), and by a sweep of leftovers from runs whose process is gone (Ctrl-C, SIGKILL, crash).

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};

use super::engine::{
    DockerError, Engine, MANAGED_LABEL, NAME_PREFIX, OWNER_LABEL, RUN_LABEL, api, is_not_found,
    owner_alive,
};

/// What a cleanup removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Container ids.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
}

/// Removes a run's containers and networks when dropped, unless disarmed by a clean shutdown.
///
/// Drop cannot await, so it removes them on a thread of its own with its own engine connection
/// and waits for it: the run's runtime may be shutting down (a panicking test) and must not be
/// relied on.
#[derive(Debug)]
pub struct RunGuard {
    run: String,
    host: String,
    armed: bool,
}

impl RunGuard {
    /// Guards everything labelled with `run` on the engine at `host`.
    pub fn new(run: &str, host: &str) -> RunGuard {
        RunGuard {
            run: run.to_owned(),
            host: host.to_owned(),
            armed: true,
        }
    }

    /// The run guarded.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Called after a clean shutdown removed everything.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let run = self.run.clone();
        let host = self.host.clone();
        let cleaner = std::thread::Builder::new()
            .name("chaosgate-docker-cleanup".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let engine = Engine::connect_to(&host, "the run's engine")
                        .await
                        .map_err(|e| e.to_string())?;
                    remove_run(&engine, &run).await.map_err(|e| e.to_string())
                })
            });
        match cleanup_result(cleaner) {
            Ok(removed) => tracing::info!(
                run = %self.run,
                containers = removed.containers.len(),
                networks = removed.networks.len(),
                "removed an abandoned docker run"
            ),
            Err(error) => tracing::warn!(
                run = %self.run,
                %error,
                "cannot remove the docker run's containers; the next run's sweep will"
            ),
        }
    }
}

fn cleanup_result(
    cleaner: std::io::Result<std::thread::JoinHandle<Result<Removed, String>>>,
) -> Result<Removed, String> {
    cleaner
        .map_err(|e| format!("cannot start the cleanup thread: {e}"))?
        .join()
        .map_err(|_| "the cleanup thread panicked".to_owned())?
}

/// Removes every container and network labelled with `run`.
pub async fn remove_run(engine: &Engine, run: &str) -> Result<Removed, DockerError> {
    let filter = format!("{RUN_LABEL}={run}");
    remove_matching(engine, &filter, |_| true).await
}

/// Removes leftovers of earlier runs: everything labelled as chaosgate's whose owning process is
/// no longer alive on this host. Runs still going (other tests, parallel runs) are left alone.
pub async fn sweep(engine: &Engine) -> Result<Removed, DockerError> {
    let filter = format!("{MANAGED_LABEL}=true");
    remove_matching(engine, &filter, |labels| {
        labels
            .get(OWNER_LABEL)
            .is_none_or(|owner| !owner_alive(owner))
    })
    .await
}

/// Containers first (a network with endpoints cannot be removed), then networks.
async fn remove_matching(
    engine: &Engine,
    label_filter: &str,
    stale: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Removed, DockerError> {
    let docker = engine.docker();
    let filters = HashMap::from([("label".to_owned(), vec![label_filter.to_owned()])]);
    let mut removed = Removed::default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(api("listing containers"))?;
    // Sandboxes are removed last: a replica container shares its network namespace.
    let mut ordered: Vec<_> = containers
        .into_iter()
        .filter(|c| c.labels.as_ref().is_none_or(&stale))
        .filter_map(|c| {
            let sandbox = c
                .labels
                .as_ref()
                .and_then(|l| l.get(super::container::ROLE_LABEL))
                .is_some_and(|r| r == super::container::SANDBOX_ROLE);
            c.id.map(|id| (sandbox, id))
        })
        .collect();
    ordered.sort();
    for (_, id) in ordered {
        match docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => removed.containers.push(id),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("removing container {id}"))(e)),
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(api("listing networks"))?;
    for network in networks {
        let Some(name) = network.name else { continue };
        if !name.starts_with(NAME_PREFIX) || !network.labels.as_ref().is_none_or(&stale) {
            continue;
        }
        match docker.remove_network(&name).await {
            Ok(()) => removed.networks.push(name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("removing network {name}"))(e)),
        }
    }
    Ok(removed)
}
