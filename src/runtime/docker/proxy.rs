//! The proxy of a docker run: `chaosgate proxy` in a container on the run network, serving the
//! scenario's own manifests plus one EndpointSlice per scenario Service listing its replica
//! containers, so it compiles the same configuration as the embedded runtime with the
//! replicas' network addresses as endpoints.
//!
//! Its listeners and a read-only `/stats` are published on 127.0.0.1 (the admin listener stays
//! on the container's loopback); its access log is JSON lines on stdout, read back through the
//! engine's log stream and handed to an [`AccessLogSink`] as if the proxy ran in-process.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::backends::DockerBackends;
use super::container::{ServiceContainer, ServiceLaunch, TRAFFIC_PORT};
use super::control;
use super::engine::{DockerError, Engine};
use crate::proxy::access_log::{AccessLogEntry, AccessLogSink};

/// The container port of the proxy's read-only `/stats`.
pub const STATS_PORT: u16 = 9902;
/// The container port of the first listener; the others follow.
pub const FIRST_LISTENER_PORT: u16 = 10000;
/// How long the proxy may take from container start to answering `/stats`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the access log may take to end after the proxy is told to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Standard-error lines kept for error messages.
const STDERR_KEPT: usize = 20;

/// What the proxy container serves.
#[derive(Debug, Clone)]
pub struct ProxyLaunch<'a> {
    /// Host files mounted read-only: `(host path, absolute path in the container)`.
    pub mounts: Vec<(String, String)>,
    /// Container paths of the files given to `-f` (their includes are followed).
    pub files: Vec<String>,
    /// Listener names as compiled (`ns/gateway/listener`); each gets a container port.
    pub listeners: &'a [String],
    /// The run's seed (the proxy's random choices).
    pub seed: u64,
}

/// The running proxy container and the task reading its log stream.
#[derive(Debug)]
pub struct ProxyContainer {
    engine: Engine,
    container: ServiceContainer,
    listeners: Vec<(String, SocketAddr)>,
    stats: SocketAddr,
    logs: JoinHandle<()>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ProxyContainer {
    /// Starts the proxy container of `backends`' run and waits until it serves; its access log
    /// entries go to `sink` until [`ProxyContainer::stop`]. The run's shutdown (or its guard)
    /// removes the container.
    pub async fn start(
        backends: &mut DockerBackends,
        engine: &Engine,
        launch: &ProxyLaunch<'_>,
        sink: Arc<dyn AccessLogSink>,
    ) -> Result<ProxyContainer, DockerError> {
        let mut command: Vec<String> = vec!["/chaosgate".to_owned(), "proxy".to_owned()];
        for file in &launch.files {
            command.push("-f".to_owned());
            command.push(file.clone());
        }
        let mut ports = Vec::new();
        for (i, name) in launch.listeners.iter().enumerate() {
            let port = u16::try_from(i)
                .ok()
                .and_then(|i| FIRST_LISTENER_PORT.checked_add(i))
                .ok_or_else(|| DockerError::Unexpected("too many listeners".to_owned()))?;
            command.push("--listen".to_owned());
            command.push(format!("{name}=0.0.0.0:{port}"));
            ports.push(port);
        }
        command.extend(
            ["--admin", "127.0.0.1:9901", "--access-log", "-"]
                .map(str::to_owned)
                .to_vec(),
        );
        ports.push(STATS_PORT);
        let container = backends
            .start_service(&ServiceLaunch {
                name: "proxy",
                command,
                ports: ports.clone(),
                env: vec![
                    format!("CHAOSGATE_PROXY_SEED={}", launch.seed),
                    format!("CHAOSGATE_PROXY_STATS_ADDR=0.0.0.0:{STATS_PORT}"),
                    "RUST_LOG=warn".to_owned(),
                ],
                mounts: launch.mounts.clone(),
            })
            .await?;
        let published = |port: u16| {
            container.published.get(&port).copied().ok_or_else(|| {
                DockerError::Unexpected(format!("{} publishes no port {port}", container.name))
            })
        };
        let listeners = launch
            .listeners
            .iter()
            .zip(&ports)
            .map(|(name, port)| Ok((name.clone(), published(*port)?)))
            .collect::<Result<Vec<_>, DockerError>>()?;
        let stats = published(STATS_PORT)?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let logs = tokio::spawn(pump_logs(
            engine.clone(),
            container.name.clone(),
            sink,
            stderr.clone(),
        ));
        let proxy = ProxyContainer {
            engine: engine.clone(),
            container,
            listeners,
            stats,
            logs,
            stderr,
        };
        proxy.wait_ready().await?;
        Ok(proxy)
    }

    /// Polls `/stats` until it answers: listeners are bound before it is served.
    async fn wait_ready(&self) -> Result<(), DockerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answer = control::request(
                self.stats,
                http::Method::GET,
                "/stats",
                bytes::Bytes::new(),
                Duration::from_secs(1),
            )
            .await;
            if answer.is_ok_and(|a| a.status.is_success()) {
                return Ok(());
            }
            // The log stream ends when the container exits: a configuration error, say.
            if self.logs.is_finished() || Instant::now() > deadline {
                return Err(DockerError::Unexpected(format!(
                    "the proxy container {} did not start serving: {}",
                    self.container.name,
                    self.stderr_tail()
                )));
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines the proxy wrote on standard error, joined.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.is_empty() {
            return "(no output)".to_owned();
        }
        lines.iter().cloned().collect::<Vec<_>>().join("; ")
    }

    /// The host address of listener `name` (`127.0.0.1:<published port>`).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// The host address of the proxy's `/stats`.
    pub fn stats_addr(&self) -> SocketAddr {
        self.stats
    }

    /// Stops the proxy (SIGINT: it drains and exits) and waits, bounded, for the rest of its
    /// access log; the container itself is removed with the run.
    pub async fn stop(self) {
        if let Err(e) = self.container.signal(&self.engine, "SIGINT").await {
            tracing::warn!("stopping the proxy container: {e}");
        }
        let mut logs = self.logs;
        if timeout(DRAIN_TIMEOUT, &mut logs).await.is_err() {
            tracing::warn!("the proxy's access log did not end in {DRAIN_TIMEOUT:?}");
            logs.abort();
        }
    }
}

/// Reads the container's log stream until it ends: stdout lines are access log entries for
/// `sink`, stderr lines are kept for error messages.
async fn pump_logs(
    engine: Engine,
    name: String,
    sink: Arc<dyn AccessLogSink>,
    stderr: Arc<Mutex<VecDeque<String>>>,
) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut stream = engine.docker().logs(&name, Some(options));
    // Frames are writes, not lines: a long line may span frames.
    let mut out = Vec::new();
    let mut err = Vec::new();
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            LogOutput::StdOut { message } => {
                out.extend_from_slice(&message);
                for line in take_lines(&mut out) {
                    match serde_json::from_slice::<AccessLogEntry>(&line) {
                        Ok(entry) => sink.log(&entry),
                        Err(e) => tracing::debug!("proxy stdout line is no access log entry: {e}"),
                    }
                }
            }
            LogOutput::StdErr { message } => {
                err.extend_from_slice(&message);
                let mut kept = stderr.lock().unwrap_or_else(PoisonError::into_inner);
                for line in take_lines(&mut err) {
                    if kept.len() == STDERR_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(String::from_utf8_lossy(&line).into_owned());
                }
            }
            _ => {}
        }
    }
}

/// Removes every complete line from the front of `buf` and returns them without `\n`.
fn take_lines(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let Some(last) = buf.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let rest = buf.split_off(last + 1);
    let complete = std::mem::replace(buf, rest);
    complete
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// One EndpointSlice document per backend of `backends`, listing its replicas' addresses on the
/// run network in replica order (the proxy numbers endpoints in document order).
pub fn endpoint_slices(backends: &DockerBackends) -> String {
    let mut names: Vec<&str> = backends
        .replicas()
        .iter()
        .map(|r| r.backend.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let listed: Vec<(&str, Vec<(usize, SocketAddr)>)> = names
        .into_iter()
        .map(|name| (name, backends.endpoints(name)))
        .collect();
    render_slices(&listed)
}

/// [`endpoint_slices`] for `(ns/name, [(replica, address)])` pairs.
fn render_slices(backends: &[(&str, Vec<(usize, SocketAddr)>)]) -> String {
    let mut out = String::new();
    for (backend, endpoints) in backends {
        let Some((namespace, name)) = backend.split_once('/') else {
            continue;
        };
        let mut endpoints = endpoints.clone();
        endpoints.sort_by_key(|(index, _)| *index);
        let _ = write!(
            out,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
             name: {name}-chaosgate\n  namespace: {namespace}\n  labels:\n    \
             kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n  \
             - port: {TRAFFIC_PORT}\nendpoints:\n"
        );
        for (_, addr) in endpoints {
            let _ = writeln!(out, "  - addresses: [\"{}\"]", addr.ip());
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn slices_give_the_proxy_the_replicas_in_order() {
        use crate::runtime::compile::EndpointSource;
        let addr = |last: u8| SocketAddr::from(([10, 9, 0, last], TRAFFIC_PORT));
        let text = render_slices(&[
            ("default/api", vec![(1, addr(3)), (0, addr(2))]),
            ("shop/cart", vec![(0, addr(4))]),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints.yaml");
        std::fs::write(&file, text).unwrap();
        let loaded = crate::scenario::load::load_files(&[file]);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let endpoints = crate::runtime::standalone::ManifestEndpoints(&loaded.objects);
        assert_eq!(
            endpoints.endpoints("Service", "default", "api", Some(8080)),
            vec![(addr(2), 0), (addr(3), 1)]
        );
        assert_eq!(
            endpoints.endpoints("Service", "shop", "cart", Some(80)),
            vec![(addr(4), 0)]
        );
    }

    #[test]
    fn lines_split_across_frames_are_joined() {
        let mut buf = b"{\"a\":1}\n{\"b\"".to_vec();
        assert_eq!(take_lines(&mut buf), vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(buf, b"{\"b\"".to_vec());
        buf.extend_from_slice(b":2}\n\n");
        assert_eq!(take_lines(&mut buf), vec![b"{\"b\":2}".to_vec()]);
        assert!(buf.is_empty());
        assert!(take_lines(&mut buf).is_empty());
    }
}
