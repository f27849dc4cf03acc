//! report.html opened in a real headless Chromium, driven over the DevTools protocol: the page
//! loads with no console errors and no request leaving the file, every image is decoded, and a
//! screenshot is kept under reports/ci/ as a CI artefact.
//!
//! With CHAOSGATE_REQUIRE_BROWSER=1 (CI) a missing browser fails the test; elsewhere it skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Kills the browser however the test ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Chromium with DevTools on an ephemeral loopback port; returns it and the port.
fn start_browser(binary: &Path, profile: &Path) -> (Browser, u16) {
    let mut child = Command::new(binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        // No name resolves, so any attempt to reach the network fails loudly instead of leaking.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let browser = Browser(child);
    for _ in 0..500 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
            let port = rest
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            // Keep draining stderr so the browser never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (browser, port);
        }
    }
    panic!("chromium did not announce its DevTools port");
}

/// Opens a new page target through the DevTools HTTP endpoint; returns its WebSocket URL.
fn new_page(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("devtools http");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        stream,
        "PUT /json/new?about:blank HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    // Read the headers, then exactly Content-Length bytes: the browser may keep the socket open.
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("content length");
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    let target: Value = serde_json::from_slice(&body).expect("target json");
    target["webSocketDebuggerUrl"]
        .as_str()
        .expect("ws url")
        .to_string()
}

/// A minimal DevTools client: commands by id, events collected while waiting.
struct DevTools {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl DevTools {
    fn connect(url: &str) -> DevTools {
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host");
        let stream = TcpStream::connect(host).expect("devtools ws");
        stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let (socket, _) = tungstenite::client(url, stream).expect("websocket handshake");
        DevTools {
            socket,
            next_id: 0,
            events: Vec::new(),
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.socket.read().expect("devtools message") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
                Message::Close(_) => panic!("devtools closed"),
                _ => {}
            }
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).expect("send");
        loop {
            let message = self.read();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    fn wait_for(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        for _ in 0..10_000 {
            let message = self.read();
            let found = message["method"] == method;
            self.events.push(message);
            if found {
                return;
            }
        }
        panic!("no {method} event");
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == byte).expect("base64") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// A real run's report.html (a short scenario through the binary).
fn real_report(out: &Path) -> PathBuf {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/quick-pass.yaml");
    let run = Command::new(env!("CARGO_BIN_EXE_chaosgate"))
        .args(["run", "--quiet", "--out"])
        .arg(out)
        .arg(scenario)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = out.join("quick-pass/latest/report.html");
    assert!(report.exists(), "no report.html");
    report.canonicalize().unwrap()
}

#[test]
fn report_html_loads_cleanly_in_chromium() {
    let Some(binary) = find_browser() else {
        assert!(
            std::env::var("CHAOSGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "CHAOSGATE_REQUIRE_BROWSER=1 but no chromium on PATH"
        );
        eprintln!("skipping the browser test: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let report = real_report(out.path());
    let profile = tempfile::tempdir().unwrap();
    let (_browser, port) = start_browser(&binary, profile.path());
    let mut tools = DevTools::connect(&new_page(port));
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        tools.call(domain, json!({}));
    }
    tools.call(
        "Page.navigate",
        json!({"url": format!("file://{}", report.display())}),
    );
    tools.wait_for("Page.loadEventFired");

    let images = tools.call(
        "Runtime.evaluate",
        json!({"expression": "JSON.stringify(Array.from(document.images).map(i => [i.complete, i.naturalWidth]))", "returnByValue": true}),
    );
    let images: Vec<(bool, u64)> =
        serde_json::from_str(images["result"]["value"].as_str().expect("images")).unwrap();
    assert!(
        images.len() >= 5,
        "expected the charts as images, found {}",
        images.len()
    );
    assert!(
        images
            .iter()
            .all(|(complete, width)| *complete && *width > 0),
        "an image did not load: {images:?}"
    );

    let screenshot = tools.call(
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = decode_base64(screenshot["data"].as_str().expect("png data"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/ci");
    std::fs::create_dir_all(&artefacts).unwrap();
    std::fs::write(artefacts.join("report-screenshot.png"), &png).unwrap();

    let console_errors: Vec<&Value> = tools
        .events
        .iter()
        .filter(|e| {
            (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                || e["method"] == "Runtime.exceptionThrown"
                || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
        })
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:#?}"
    );
    let requests: Vec<&str> = tools
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .filter(|url| {
            !url.starts_with("data:") && !url.starts_with("file:") && *url != "about:blank"
        })
        .collect();
    assert!(requests.is_empty(), "requests left the file: {requests:?}");
}
