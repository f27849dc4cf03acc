//! The `mock-backends` binary: ready line, control endpoint, signals, bad input.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::util::*;

const BIN: &str = env!("CARGO_BIN_EXE_mock-backends");

/// A running binary and its bound addresses.
struct Running {
    child: Child,
    listen: SocketAddr,
    control: SocketAddr,
}

async fn spawn(config: &str) -> Running {
    let mut child = Command::new(BIN)
        .args([
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    let read = tokio::time::timeout(Duration::from_secs(2), stdout.read_line(&mut line));
    read.await
        .expect("ready line in time")
        .expect("reads stdout");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    let addr = |key: &str| -> SocketAddr {
        ready[key]
            .as_str()
            .expect("address string")
            .parse()
            .expect("socket address")
    };
    Running {
        listen: addr("listen"),
        control: addr("control"),
        child,
    }
}

/// One control call on a fresh connection.
async fn control(addr: SocketAddr, method: Method, path: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let mut conn = Conn::h1(addr).await.expect("control connects");
    conn.send(addr, request).await.expect("control answers")
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).expect("JSON body")
}

#[tokio::test]
async fn control_endpoint_drives_the_replica() {
    let mut bin = spawn(r#"{"backend":"payments","namespace":"shop","replica":3,"seed":9}"#).await;
    let (listen, ctl) = (bin.listen, bin.control);

    let ready = control(ctl, Method::GET, "/ready", "").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(json(&ready)["up"], true);
    let reply = must_get(listen, "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-chaosgate-backend"), Some("shop/payments"));
    assert_eq!(reply.header("x-chaosgate-replica"), Some("3"));

    let put = control(
        ctl,
        Method::PUT,
        "/faults",
        r#"[{"type":"error","status":503}]"#,
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        json(&put),
        serde_json::json!([{"type": "error", "status": 503, "rate": 1.0}])
    );
    assert_eq!(
        must_get(listen, "/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let post = control(
        ctl,
        Method::POST,
        "/faults",
        r#"{"type":"latency","latency":"50ms"}"#,
    )
    .await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(json(&post).as_array().map(Vec::len), Some(2));
    let (reply, took) = timed(must_get(listen, "/")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took >= Duration::from_millis(50), "{took:?}");

    let bad = control(
        ctl,
        Method::PUT,
        "/faults",
        r#"[{"type":"error","rate":7}]"#,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        json(&bad)["error"]
            .as_str()
            .is_some_and(|e| e.contains("between 0 and 1"))
    );
    assert_eq!(
        json(&control(ctl, Method::GET, "/faults", "").await)
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let stats = json(&control(ctl, Method::GET, "/stats", "").await);
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["injectedErrors"], 2);
    assert_eq!(stats["up"], true);

    let cleared = control(ctl, Method::DELETE, "/faults", "").await;
    assert_eq!(
        (cleared.status, json(&cleared)),
        (StatusCode::OK, serde_json::json!([]))
    );
    assert_eq!(must_get(listen, "/").await.status, StatusCode::OK);

    assert_eq!(
        control(ctl, Method::GET, "/nope", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        control(ctl, Method::POST, "/stats", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // Kill through control: the replica goes away, control stays, clearing brings it back.
    let kill = control(ctl, Method::PUT, "/faults", r#"[{"type":"kill"}]"#).await;
    assert_eq!(kill.status, StatusCode::OK);
    assert!(eventually(Duration::from_secs(1), || async { refused(listen).await }).await);
    assert_eq!(
        control(ctl, Method::GET, "/ready", "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    control(ctl, Method::DELETE, "/faults", "").await;
    assert!(eventually(Duration::from_secs(1), || async { !refused(listen).await }).await);
    assert_eq!(must_get(listen, "/").await.status, StatusCode::OK);
    assert_eq!(
        json(&control(ctl, Method::GET, "/stats", "").await)["restarts"],
        1
    );

    // SIGTERM: a clean exit.
    let pid = bin.child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(2), bin.child.wait())
        .await
        .expect("exits in time")
        .expect("waits");
    assert!(status.success(), "{status:?}");
    assert!(refused(listen).await && refused(ctl).await);
}

#[tokio::test]
async fn bad_config_exits_with_usage_error() {
    for config in [
        r#"{"backend":"a","errorRate":3}"#,
        r#"{"backnd":"a"}"#,
        "not json",
    ] {
        let output = Command::new(BIN)
            .args([
                "--config",
                config,
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
            ])
            .output();
        let output = tokio::time::timeout(Duration::from_secs(2), output)
            .await
            .expect("exits in time")
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{config}");
        assert!(output.stdout.is_empty());
        assert!(String::from_utf8_lossy(&output.stderr).contains("--config"));
    }
}
