//! The connection to a Docker engine, and the labels that mark everything chaosgate starts.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;

/// Label on every container and network chaosgate creates.
pub const MANAGED_LABEL: &str = "dev.chaosgate.managed";
/// Label holding the run id.
pub const RUN_LABEL: &str = "dev.chaosgate.run";
/// Label holding `<host>/<pid>` of the process that owns the run, so a sweep can tell leftovers of
/// dead runs from those of runs still going (tests and parallel runs share one engine).
pub const OWNER_LABEL: &str = "dev.chaosgate.owner";
/// Prefix of every network (and container) name.
pub const NAME_PREFIX: &str = "chaosgate-";

/// Seconds a single engine API call may take before it fails.
const API_TIMEOUT_S: u64 = 60;
/// Seconds the engine may take to answer the first calls.
const CONNECT_TIMEOUT_S: u64 = 10;
/// Where the engine is looked for when `DOCKER_HOST` is not set.
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// A connected Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
}

/// Why the Docker runtime cannot do something.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answered at the address tried.
    #[error(
        "cannot reach a Docker engine at {host} ({how}): {source}; start Docker, or set DOCKER_HOST \
         to the engine's address (unix:///path/to/docker.sock or tcp://host:port)"
    )]
    Unreachable {
        /// The address tried.
        host: String,
        /// Where that address came from.
        how: &'static str,
        /// What the engine client reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// An engine call failed.
    #[error("docker: {what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// What the engine reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// The static binaries for the image are missing.
    #[error("{0}")]
    Binaries(String),
    /// Building the image failed.
    #[error("building image {tag}: {message}")]
    Image {
        /// The image being built.
        tag: String,
        /// What went wrong.
        message: String,
    },
    /// The engine answered something the runtime cannot use.
    #[error("docker: {0}")]
    Unexpected(String),
    /// A replica's control endpoint did not answer as expected.
    #[error("control endpoint of {replica}: {message}")]
    Control {
        /// `ns/name#index`.
        replica: String,
        /// What went wrong.
        message: String,
    },
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST`, or the default local socket, agrees on an
    /// API version and checks that it answers.
    pub async fn connect() -> Result<Engine, DockerError> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => Self::connect_to(&host, "from DOCKER_HOST").await,
            _ => {
                let how = "the default socket; DOCKER_HOST is not set";
                Self::connect_to(DEFAULT_SOCKET, how).await
            }
        }
    }

    /// Connects to the engine at `host` (`unix://…`, `tcp://…`, `http://…`); `how` says where
    /// the address came from, for the error.
    pub async fn connect_to(host: &str, how: &'static str) -> Result<Engine, DockerError> {
        let unreachable = |source| DockerError::Unreachable {
            host: host.to_owned(),
            how,
            source,
        };
        let docker = Docker::connect_with_host(host).map_err(unreachable)?;
        // A socket whose engine hangs should not hold a run for the full API timeout.
        let docker = docker.with_timeout(Duration::from_secs(CONNECT_TIMEOUT_S));
        // Older engines (20.10 speaks 1.41) refuse requests with a newer version in the path.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine {
            docker: docker.with_timeout(Duration::from_secs(API_TIMEOUT_S)),
            host: host.to_owned(),
        })
    }

    /// The client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The address the engine was reached at.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Identifies the current process among runs sharing an engine: `<hostname>/<pid>`.
pub fn owner_id() -> String {
    format!("{}/{}", hostname(), std::process::id())
}

/// Whether the owner of a leftover (`<hostname>/<pid>`) is a live process on this host; owners on
/// other hosts count as alive, since only they can tell.
pub fn owner_alive(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once('/') else {
        return false;
    };
    if host != hostname() {
        return true;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => true,
        Ok(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The labels of everything started for `run`, plus `extra`.
pub fn labels(run: &str, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut out = HashMap::from([
        (MANAGED_LABEL.to_owned(), "true".to_owned()),
        (RUN_LABEL.to_owned(), run.to_owned()),
        (OWNER_LABEL.to_owned(), owner_id()),
    ]);
    out.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    out
}

/// Wraps an engine error with what was being done.
pub(crate) fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let what = what.into();
    move |source| DockerError::Api { what, source }
}

/// Whether an engine error is a 404 (the object is already gone).
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
