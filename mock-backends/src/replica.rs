//! A replica's life: bind, serve HTTP/1.1 and h2c, stop on `kill`, come back on the same address
//! when `kill` is cleared, stop for good on shutdown or when its handle is dropped.
//!
//! ```text
//!   start ──► serving ──kill──► down ──kill cleared──► serving (new listener, same address)
//!                │                │
//!                └──── shutdown / handle dropped ────► stopped
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{ConfigError, ReplicaConfig};
use crate::fault::{ActiveFaults, Fault, FaultError};
use crate::io::SharedStream;
use crate::service;
use crate::state::Shared;
use crate::stats::ReplicaStats;

/// Pause between attempts to bind the address again after a kill, when it is still taken.
const REBIND_BACKOFF: Duration = Duration::from_millis(20);

/// Listen backlog of a replica.
const BACKLOG: u32 = 1024;

/// Starts replicas.
#[derive(Debug)]
pub struct Replica;

/// Why a replica did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid replica config: {0}")]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
}

/// Changes faults and reads counters of a running replica; cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct ReplicaController {
    shared: Arc<Shared>,
}

/// A running replica. Dropping it stops the replica (listener, connections and requests);
/// [`ReplicaHandle::shutdown`] also waits until everything is closed.
#[derive(Debug)]
pub struct ReplicaHandle {
    addr: SocketAddr,
    controller: ReplicaController,
    /// Dropping the sender is the stop signal too.
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Why an incarnation ended.
enum Ended {
    Killed,
    Stopped,
}

impl Replica {
    /// Binds `listen` (port 0 picks a free port, kept across restarts) and starts serving.
    pub async fn start(
        config: ReplicaConfig,
        listen: SocketAddr,
    ) -> Result<ReplicaHandle, StartError> {
        let shared = Arc::new(Shared::try_new(config)?);
        let listener = bind(listen).map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        shared.counters.set_up(true);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), listener, addr, stop_rx));
        tracing::debug!(%addr, backend = %shared.backend_header.to_str().unwrap_or_default(),
            replica = shared.config.replica, "replica started");
        Ok(ReplicaHandle {
            addr,
            controller: ReplicaController { shared },
            stop,
            task,
        })
    }
}

impl ReplicaHandle {
    /// The bound address (the same after a kill/restart cycle).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A clonable controller for this replica.
    pub fn controller(&self) -> ReplicaController {
        self.controller.clone()
    }

    /// The configuration the replica runs with.
    pub fn config(&self) -> &ReplicaConfig {
        self.controller.config()
    }

    /// Replaces the active faults. See [`ReplicaController::set_faults`].
    pub fn set_faults(&self, faults: Vec<Fault>) -> Result<(), FaultError> {
        self.controller.set_faults(faults)
    }

    /// Adds one fault to the active ones.
    pub fn add_fault(&self, fault: Fault) -> Result<(), FaultError> {
        self.controller.add_fault(fault)
    }

    /// Clears every fault (a killed replica starts again).
    pub fn clear_faults(&self) {
        self.controller.clear_faults();
    }

    /// The active faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.controller.faults()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ReplicaStats {
        self.controller.stats()
    }

    /// Stops the replica and waits until its listener, connections and requests are gone.
    pub async fn shutdown(self) {
        let Self { stop, task, .. } = self;
        stop.send_replace(true);
        if let Err(error) = task.await {
            tracing::warn!(%error, "replica task ended abnormally");
        }
    }
}

impl ReplicaController {
    /// The configuration the replica runs with.
    pub fn config(&self) -> &ReplicaConfig {
        &self.shared.config
    }

    /// Replaces the active faults; they apply to requests that arrive from now on (and release
    /// hung requests, stop or restart the replica at once). Nothing changes on error.
    pub fn set_faults(&self, faults: Vec<Fault>) -> Result<(), FaultError> {
        let active = ActiveFaults::try_new(faults)?;
        tracing::info!(faults = ?active.list, "faults set");
        self.shared.faults.send_replace(Arc::new(active));
        Ok(())
    }

    /// Adds one fault to the active ones.
    pub fn add_fault(&self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        let mut result = Ok(());
        // Rebuild under the channel's lock so concurrent adds do not lose each other.
        self.shared.faults.send_if_modified(|current| {
            let mut list = current.list.clone();
            list.push(fault);
            match ActiveFaults::try_new(list) {
                Ok(active) => {
                    *current = Arc::new(active);
                    true
                }
                Err(error) => {
                    result = Err(error);
                    false
                }
            }
        });
        result
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        tracing::info!("faults cleared");
        self.shared
            .faults
            .send_replace(Arc::new(ActiveFaults::default()));
    }

    /// The active faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.faults().list.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ReplicaStats {
        self.shared.counters.snapshot()
    }
}

/// A listener with `SO_REUSEADDR`, so a restarted replica can take its port back while the old
/// connections sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Returns once the handle asked to stop or went away.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Returns once the active faults do (or do not) include `kill`. The channel's sender lives in
/// `Shared`, which the caller holds, so it cannot close.
async fn kill_is(faults: &mut watch::Receiver<Arc<ActiveFaults>>, kill: bool) {
    let _ = faults.wait_for(|f| f.kill == kill).await;
}

async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut faults = shared.faults.subscribe();
    let mut listener = Some(listener);
    loop {
        let current = match listener.take() {
            Some(listener) => listener,
            None => {
                let Some(listener) = rebind(addr, &mut stop).await else {
                    break;
                };
                shared.counters.restarted();
                tracing::info!(%addr, "replica restarted");
                listener
            }
        };
        shared.counters.set_up(true);
        let ended = serve(&shared, current, &mut stop).await;
        shared.counters.set_up(false);
        match ended {
            Ended::Stopped => break,
            Ended::Killed => tracing::info!(%addr, "replica killed"),
        }
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            () = kill_is(&mut faults, false) => {}
        }
    }
    shared.counters.set_up(false);
}

/// Binds the replica's address again, retrying while it is taken; `None` if stopped meanwhile.
async fn rebind(addr: SocketAddr, stop: &mut watch::Receiver<bool>) -> Option<TcpListener> {
    loop {
        match bind(addr) {
            Ok(listener) => return Some(listener),
            Err(error) => tracing::warn!(%addr, %error, "cannot listen again yet"),
        }
        tokio::select! {
            biased;
            () = stopped(stop) => return None,
            () = tokio::time::sleep(REBIND_BACKOFF) => {}
        }
    }
}

/// One incarnation: accepts until killed or stopped. Returning drops the listener and aborts every
/// connection task; dropping an HTTP/2 connection resets its streams, which ends hyper's stream
/// tasks (the teardown test checks that no task is left).
async fn serve(
    shared: &Arc<Shared>,
    listener: TcpListener,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let mut faults = shared.faults.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(stop) => return Ended::Stopped,
            () = kill_is(&mut faults, true) => return Ended::Killed,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(shared.clone(), stream));
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(REBIND_BACKOFF).await;
                }
            },
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    let _open = shared.counters.connection();
    let _ = stream.set_nodelay(true);
    // The task keeps a second owner of the socket so a `reset` fault can set zero linger on it.
    let stream = Arc::new(stream);
    let reset = Arc::new(Notify::new());
    let service = {
        let (shared, reset) = (shared.clone(), reset.clone());
        service_fn(move |request| service::handle(shared.clone(), reset.clone(), request))
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let io = TokioIo::new(SharedStream(stream.clone()));
    tokio::select! {
        served = builder.serve_connection(io, service) => {
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = reset.notified() => {
            shared.counters.reset();
            if let Err(error) = stream.set_zero_linger() {
                tracing::warn!(%error, "cannot set zero linger; the connection closes with a FIN");
            }
            // Leaving drops hyper's connection and then our owner: the close sends an RST.
        }
    }
}
