//! The fault relay: a TCP forwarder between the proxy and one backend replica, so that network
//! faults in the embedded runtime are real TCP-level events.
//!
//! * latency — every chunk on its way to the replica waits that long (requests arrive late);
//! * reset — a connection that sends data is closed with an RST (SO_LINGER 0);
//! * stall (partition, pause) — no bytes move either way, and new connects time out: the relay
//!   stops accepting and fills its accept queue, so the kernel drops further SYNs;
//! * refuse (kill) — the listener is closed, so connects are refused; it is bound again, on the
//!   same address, when the fault ends.
//!
//! With no fault active a chunk costs one read, one `watch` borrow and one write.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Accept queue length; a stall fills it so that further SYNs are dropped.
const BACKLOG: u32 = 128;
/// Bytes forwarded per read.
const CHUNK: usize = 16 * 1024;

/// The network faults a relay can apply at one moment; several may be active at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayFaults {
    /// Added before each chunk forwarded to the replica.
    pub latency: Duration,
    /// Connections that carry data are reset.
    pub reset: bool,
    /// Nothing moves and new connects time out (partition, pause).
    pub stall: bool,
    /// The listener is closed: connects are refused (kill).
    pub refuse: bool,
}

/// Counters a relay keeps, for tests and reports.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub accepted: AtomicU64,
    pub resets: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

/// A running relay. Dropping it stops the relay and closes every connection it holds.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    faults: watch::Sender<RelayFaults>,
    stats: Arc<RelayStats>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay on `listen` (port 0 picks one) that forwards to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> io::Result<Relay> {
        let listener = bind(listen)?;
        let addr = listener.local_addr()?;
        let (faults, rx) = watch::channel(RelayFaults::default());
        let stats = Arc::new(RelayStats::default());
        let task = tokio::spawn(accept_loop(listener, addr, target, rx, stats.clone()));
        Ok(Relay {
            addr,
            faults,
            stats,
            task,
        })
    }

    /// The address the proxy connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the active faults; connections in flight see the change at their next chunk.
    pub fn set_faults(&self, faults: RelayFaults) {
        self.faults.send_replace(faults);
    }

    /// The faults now active.
    pub fn faults(&self) -> RelayFaults {
        *self.faults.borrow()
    }

    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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

/// Accepts while the relay is healthy; closes the listener to refuse, stops accepting to stall.
async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut faults: watch::Receiver<RelayFaults>,
    stats: Arc<RelayStats>,
) {
    // Connections are owned by this task set, so aborting the relay aborts them all.
    let mut connections = tokio::task::JoinSet::new();
    let mut listener = Some(listener);
    loop {
        let current = *faults.borrow_and_update();
        if current.refuse {
            listener = None;
        } else if listener.is_none() {
            match bind(addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "relay could not bind again; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(active) = listener.as_ref().filter(|_| !current.refuse) else {
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        };
        if current.stall {
            let fillers = fill_accept_queue(addr).await;
            // Wait for the stall to end, then take the fillers (and real connects that got in
            // before the queue filled) out of the queue.
            while faults.borrow().stall && !faults.borrow().refuse {
                if faults.changed().await.is_err() {
                    return;
                }
            }
            let filler_addrs: Vec<SocketAddr> =
                fillers.iter().filter_map(|s| s.local_addr().ok()).collect();
            drop(fillers);
            drain_fillers(
                active,
                &filler_addrs,
                target,
                &faults,
                &stats,
                &mut connections,
            )
            .await;
            continue;
        }
        tokio::select! {
            accepted = active.accept() => {
                if let Ok((stream, _)) = accepted {
                    spawn_connection(&mut connections, stream, target, faults.clone(), stats.clone());
                }
            }
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn spawn_connection(
    connections: &mut tokio::task::JoinSet<()>,
    client: TcpStream,
    target: SocketAddr,
    faults: watch::Receiver<RelayFaults>,
    stats: Arc<RelayStats>,
) {
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    connections.spawn(async move {
        let _ = client.set_nodelay(true);
        let Ok(upstream) = TcpStream::connect(target).await else {
            // The replica is gone: tell the client at once rather than leave it hanging.
            let _ = client.set_zero_linger();
            return;
        };
        let _ = upstream.set_nodelay(true);
        relay_connection(client, upstream, faults, stats).await;
    });
}

/// Opens enough connections to our own listener to fill its accept queue.
async fn fill_accept_queue(addr: SocketAddr) -> Vec<TcpStream> {
    let mut fillers = Vec::new();
    for _ in 0..=BACKLOG + 1 {
        let connect = TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(50), connect).await {
            Ok(Ok(stream)) => fillers.push(stream),
            // The queue is full: further connects hang, which is the point.
            _ => break,
        }
    }
    fillers
}

/// Accepts what queued up during a stall: fillers are dropped, real connections served.
async fn drain_fillers(
    listener: &TcpListener,
    fillers: &[SocketAddr],
    target: SocketAddr,
    faults: &watch::Receiver<RelayFaults>,
    stats: &Arc<RelayStats>,
    connections: &mut tokio::task::JoinSet<()>,
) {
    loop {
        let next = tokio::time::timeout(Duration::from_millis(5), listener.accept()).await;
        let Ok(Ok((stream, peer))) = next else { return };
        if !fillers.contains(&peer) {
            spawn_connection(connections, stream, target, faults.clone(), stats.clone());
        }
    }
}

/// Pumps both directions until both sides close, or a reset fault ends the connection with an
/// RST on both sockets.
async fn relay_connection(
    mut client: TcpStream,
    mut upstream: TcpStream,
    faults: watch::Receiver<RelayFaults>,
    stats: Arc<RelayStats>,
) {
    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let up = pump(
            &mut client_read,
            &mut upstream_write,
            faults.clone(),
            &stats,
            Direction::Up,
        );
        let down = pump(
            &mut upstream_read,
            &mut client_write,
            faults,
            &stats,
            Direction::Down,
        );
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut up, if !up_done => { up_done = true; end }
                end = &mut down, if !down_done => { down_done = true; end }
            };
            if end == PumpEnd::Reset || (up_done && down_done) {
                break end;
            }
        }
    };
    if end == PumpEnd::Reset {
        stats.resets.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Why a pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    /// The reading side closed (or failed); the writing side was shut down.
    Closed,
    /// A reset fault hit a request: the whole connection must be reset.
    Reset,
}

/// Forwards one direction chunk by chunk, honouring the faults in force for each chunk.
async fn pump(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    mut faults: watch::Receiver<RelayFaults>,
    stats: &RelayStats,
    direction: Direction,
) -> PumpEnd {
    let mut buf = vec![0u8; CHUNK];
    loop {
        // No reads while stalled: the sender's buffers fill up, as on a cut link.
        if !wait_while_stalled(&mut faults).await {
            return PumpEnd::Closed;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return PumpEnd::Closed;
                }
                Ok(n) => n,
            },
            changed = faults.changed() => {
                if changed.is_err() {
                    return PumpEnd::Closed;
                }
                continue;
            }
        };
        let current = *faults.borrow();
        if current.reset && direction == Direction::Up {
            return PumpEnd::Reset;
        }
        if !wait_while_stalled(&mut faults).await {
            return PumpEnd::Closed;
        }
        if !current.latency.is_zero() && direction == Direction::Up {
            tokio::time::sleep(current.latency).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return PumpEnd::Closed;
        }
        let counter = if direction == Direction::Up {
            &stats.bytes_up
        } else {
            &stats.bytes_down
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Waits until no stall is in force; false when the relay is gone.
async fn wait_while_stalled(faults: &mut watch::Receiver<RelayFaults>) -> bool {
    while faults.borrow().stall {
        if faults.changed().await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
