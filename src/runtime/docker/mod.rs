//! The docker runtime: every mock backend replica runs in a container on a private network of
//! its run, so `kill`, `pause` and `partition` are real container operations.
//!
//! # A run
//!
//! ```text
//! Engine::connect()            DOCKER_HOST, else unix:///var/run/docker.sock; clear error if absent
//! prepare(&engine)             sweep leftovers of dead runs, find/build static binaries, build image
//! DockerBackends::start(..)    network chaosgate-<run>, per replica a sandbox + replica container
//! ProxyContainer::start(..)    the proxy's container on the same network (same image,
//!                              `/chaosgate proxy`, manifests + EndpointSlices mounted read-only)
//! run_timeline(.., &backends)  faults through FaultTarget (kill/pause/partition on containers,
//!                              the rest through the replica's control endpoint)
//! backends.shutdown().await    removes the containers and the network
//! ```
//!
//! # Faults
//!
//! Each replica is two containers (see [`container`]): a sandbox owning the network namespace
//! and the replica process sharing it. `kill` SIGKILLs the replica container and starts it again
//! when the fault ends (connects are refused meanwhile: the address stays, nothing listens);
//! `pause` pauses it (the kernel still completes handshakes; nothing is read or answered);
//! `partition` disconnects the sandbox from the run network (existing connections stall; new
//! connects fail after the neighbour lookup gives up, about 3 s on Linux, with "no route to
//! host" — not a connect *timeout* as in the embedded relay). Every other fault is played by the
//! replica through its control endpoint, sent before a container fault hides the replica and
//! again as soon as it is back, so overlapping faults compose (see [`backends`]).
//!
//! # Cleanup
//!
//! Everything is labelled `dev.chaosgate.managed=true`, `dev.chaosgate.run=<run id>` and
//! `dev.chaosgate.owner=<host>/<pid>`; the network is named `chaosgate-<run id>`.
//! - [`DockerBackends::shutdown`] removes a run's containers and network.
//! - Its [`RunGuard`] removes them when the handle is dropped without a shutdown (an early
//!   return, a panic): on its own thread with its own engine connection, waited for.
//! - [`sweep`] (run by [`prepare`]) removes what runs whose process is gone left behind
//!   (SIGKILL, a crash), and leaves runs of live processes alone.
//! - Ctrl-C: the command's `CancellationToken` is cancelled by a `tokio::signal::ctrl_c()` task;
//!   the timeline runner and the load stop on it, and the command then awaits
//!   `backends.shutdown()` before exiting. A second Ctrl-C may exit at once (no destructors run);
//!   the next run's sweep then removes what is left.
//!
//! # Where the image comes from
//!
//! The image `chaosgate-runtime:<content hash>` is `FROM scratch` with static `mock-backends` and
//! `chaosgate`; it is built locally when missing (no registry is used). See [`image`] for where
//! the static binaries are found: `CHAOSGATE_STATIC_DIR`, next to the running executable (release
//! archives ship static `chaosgate` and `mock-backends` side by side), or built from the source
//! tree with cargo.

pub mod backends;
pub mod cleanup;
pub mod container;
pub mod control;
pub mod engine;
pub mod image;
pub mod network;
pub mod proxy;
pub mod run_id;

#[cfg(test)]
mod tests;

pub use backends::{DockerBackends, DockerReplica, desired};
pub use cleanup::{Removed, RunGuard, remove_run, sweep};
pub use container::{Published, ServiceContainer, ServiceLaunch};
pub use engine::{DockerError, Engine};
pub use image::{RuntimeImage, StaticBinaries, ensure_image};
pub use proxy::{ProxyContainer, ProxyLaunch, endpoint_slices};
pub use run_id::RunId;

/// Gets a connected engine ready for runs: sweeps leftovers of dead runs, then finds (or builds)
/// the static binaries and makes sure their image exists.
pub async fn prepare(engine: &Engine) -> Result<RuntimeImage, DockerError> {
    let removed = sweep(engine).await?;
    if !removed.containers.is_empty() || !removed.networks.is_empty() {
        tracing::info!(
            containers = removed.containers.len(),
            networks = removed.networks.len(),
            "removed leftovers of earlier docker runs"
        );
    }
    let binaries = StaticBinaries::locate_or_build().await?;
    ensure_image(engine, &binaries).await
}
