use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::{Relay, RelayFaults};

/// An echo server on loopback; it lives as long as the test's runtime.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn relay() -> Relay {
    let target = echo_server().await;
    Relay::start("127.0.0.1:0".parse().unwrap(), target)
        .await
        .unwrap()
}

async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(msg).await?;
    let mut buf = vec![0u8; msg.len()];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[tokio::test]
async fn forwards_both_ways_without_faults() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    for i in 0..20 {
        let msg = format!("hello {i}");
        assert_eq!(
            round_trip(&mut stream, msg.as_bytes()).await.unwrap(),
            msg.as_bytes()
        );
    }
    assert_eq!(
        relay
            .stats()
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn latency_delays_requests() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    round_trip(&mut stream, b"warm").await.unwrap();
    relay.set_faults(RelayFaults {
        latency: Duration::from_millis(150),
        ..RelayFaults::default()
    });
    let started = Instant::now();
    round_trip(&mut stream, b"slow").await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
}

#[tokio::test]
async fn reset_sends_rst_when_a_request_arrives() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    round_trip(&mut stream, b"before").await.unwrap();
    relay.set_faults(RelayFaults {
        reset: true,
        ..RelayFaults::default()
    });
    let err = round_trip(&mut stream, b"boom").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err:?}");
    // New connections are accepted, then reset on their first request.
    let mut fresh = TcpStream::connect(relay.addr()).await.unwrap();
    let err = round_trip(&mut fresh, b"boom").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err:?}");
}

#[tokio::test]
async fn stall_holds_bytes_and_times_out_connects_until_cleared() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    round_trip(&mut stream, b"before").await.unwrap();
    relay.set_faults(RelayFaults {
        stall: true,
        ..RelayFaults::default()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    stream.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(300), stream.read_exact(&mut buf))
            .await
            .is_err(),
        "bytes moved during a stall"
    );
    let connect = timeout(Duration::from_millis(500), TcpStream::connect(relay.addr())).await;
    assert!(
        connect.is_err(),
        "a connect succeeded during a stall: {connect:?}"
    );

    relay.set_faults(RelayFaults::default());
    timeout(Duration::from_secs(2), stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
    let mut fresh = timeout(Duration::from_secs(3), TcpStream::connect(relay.addr()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(round_trip(&mut fresh, b"after").await.unwrap(), b"after");
}

#[tokio::test]
async fn refuse_closes_the_listener_and_binds_it_again() {
    let relay = relay().await;
    let addr = relay.addr();
    relay.set_faults(RelayFaults {
        refuse: true,
        ..RelayFaults::default()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    relay.set_faults(RelayFaults::default());
    let mut stream = None;
    for _ in 0..50 {
        if let Ok(s) = TcpStream::connect(addr).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stream = stream.expect("relay listens again on the same address");
    assert_eq!(round_trip(&mut stream, b"back").await.unwrap(), b"back");
}
