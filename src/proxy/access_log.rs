//! Per-request access log records, delivered in-process through a cheap sink, and a JSON-lines
//! writer for the standalone `chaosgate proxy` command.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::flags::{ResponseFlag, ResponseFlags};

/// One finished request, as Envoy's access log would describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessLogEntry {
    /// `x-request-id` (the client's, or generated).
    pub request_id: RequestId,
    /// Listener name.
    pub listener: Arc<str>,
    /// Matched route name (`httproute/<ns>/<name>/rule/<i>/match/<j>`), if any.
    pub route: Option<Arc<str>>,
    /// Chosen cluster, if any.
    pub cluster: Option<Arc<str>>,
    /// Upstream host of the last attempt.
    pub upstream_host: Option<SocketAddr>,
    /// That host's backend, `ns/name`.
    pub backend: Option<Arc<str>>,
    /// That host's replica index.
    pub replica: Option<usize>,
    /// Request method.
    #[serde(serialize_with = "display", deserialize_with = "method_from_str")]
    pub method: Method,
    /// Request path (with query). Both it and the method share the request's memory, so an
    /// entry costs no copy of them.
    #[serde(serialize_with = "display", deserialize_with = "path_from_str")]
    pub path: PathAndQuery,
    /// Status sent downstream (0 when no response could be sent).
    pub status: u16,
    /// Envoy response flags.
    #[serde(serialize_with = "flags_as_str", deserialize_with = "flags_from_str")]
    pub response_flags: ResponseFlags,
    /// Upstream attempts made (1 + retries; 0 when none).
    pub attempts: u32,
    /// Start time, as an offset from the proxy's start (tokio clock).
    #[serde(
        serialize_with = "duration_ms",
        deserialize_with = "ms_duration",
        rename = "start_ms"
    )]
    pub start: Duration,
    /// From request start until the response body ended.
    #[serde(
        serialize_with = "duration_ms",
        deserialize_with = "ms_duration",
        rename = "duration_ms"
    )]
    pub duration: Duration,
    /// From sending the last attempt upstream to its response headers.
    #[serde(
        serialize_with = "opt_duration_ms",
        deserialize_with = "opt_ms_duration",
        rename = "upstream_duration_ms"
    )]
    pub upstream_duration: Option<Duration>,
}

/// An `x-request-id` value (visible ASCII, non-empty when it came from a request). It shares
/// the memory of the header value the request carries, so logging it copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id of a header value, if it is usable as one: visible ASCII and not empty.
    pub fn of(value: &HeaderValue) -> Option<RequestId> {
        let usable = !value.is_empty() && value.to_str().is_ok();
        usable.then(|| RequestId(value.clone()))
    }

    /// An id the proxy made (hex digits and dashes), in one allocation that the header sent
    /// upstream shares.
    pub fn generated(text: [u8; 36]) -> RequestId {
        HeaderValue::from_maybe_shared(Bytes::from_owner(text))
            .map(RequestId)
            .unwrap_or_else(|_| RequestId::from(""))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // `of` and `From<&str>` only take visible ASCII.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl From<&str> for RequestId {
    /// An id for `text`; characters a header value cannot hold leave it empty.
    fn from(text: &str) -> RequestId {
        RequestId(HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("")))
    }
}

impl PartialEq<&str> for RequestId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RequestId, D::Error> {
        let text = String::deserialize(d)?;
        HeaderValue::try_from(text)
            .map(RequestId)
            .map_err(serde::de::Error::custom)
    }
}

/// Receives every access log entry; must be cheap (it runs at the end of each request).
pub trait AccessLogSink: Send + Sync {
    /// Takes one entry.
    fn log(&self, entry: &AccessLogEntry);
}

/// Writes entries as JSON lines.
#[derive(Debug)]
pub struct JsonLinesSink<W: Write + Send> {
    out: Mutex<W>,
}

/// Fans entries out to in-process subscribers (a bounded broadcast; slow readers lag).
#[derive(Debug)]
pub struct BroadcastSink {
    tx: broadcast::Sender<Arc<AccessLogEntry>>,
}

/// Sends every entry to several sinks.
#[derive(Default)]
pub struct FanoutSink {
    sinks: Vec<Arc<dyn AccessLogSink>>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out` (wrap files in a `LineWriter` or `BufWriter`).
    pub fn new(out: W) -> Self {
        JsonLinesSink {
            out: Mutex::new(out),
        }
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl JsonLinesSink<std::io::LineWriter<std::fs::File>> {
    /// A sink appending JSON lines to the file at `path` (created if missing), one flush per
    /// entry so `tail -f` sees each request as it ends.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLinesSink::new(std::io::LineWriter::new(file)))
    }
}

impl<W: Write + Send> AccessLogSink for JsonLinesSink<W> {
    fn log(&self, entry: &AccessLogEntry) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A failing log writer must not fail requests; the entry is dropped.
        if serde_json::to_writer(&mut *out, entry).is_ok() {
            let _ = out.write_all(b"\n");
        }
    }
}

impl BroadcastSink {
    /// A broadcast keeping up to `capacity` entries per slow subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        BroadcastSink { tx }
    }

    /// A new subscription, seeing entries logged from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AccessLogEntry>> {
        self.tx.subscribe()
    }
}

impl AccessLogSink for BroadcastSink {
    fn log(&self, entry: &AccessLogEntry) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(entry.clone()));
        }
    }
}

impl FanoutSink {
    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn AccessLogSink>) {
        self.sinks.push(sink);
    }
}

impl AccessLogSink for FanoutSink {
    fn log(&self, entry: &AccessLogEntry) {
        for s in &self.sinks {
            s.log(entry);
        }
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn method_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let text = String::deserialize(d)?;
    Method::from_bytes(text.as_bytes()).map_err(serde::de::Error::custom)
}

fn path_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathAndQuery, D::Error> {
    let text = String::deserialize(d)?;
    PathAndQuery::try_from(text).map_err(serde::de::Error::custom)
}

fn flags_as_str<S: serde::Serializer>(f: &ResponseFlags, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

fn duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn opt_duration_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => duration_ms(d, s),
        None => s.serialize_none(),
    }
}

/// Every flag, to read codes back (a JSON-lines log collected from a proxy in a container).
const ALL_FLAGS: [ResponseFlag; 14] = [
    ResponseFlag::NoHealthyUpstream,
    ResponseFlag::UpstreamConnectionFailure,
    ResponseFlag::UpstreamOverflow,
    ResponseFlag::NoRouteFound,
    ResponseFlag::UpstreamRetryLimitExceeded,
    ResponseFlag::UpstreamRequestTimeout,
    ResponseFlag::UpstreamConnectionTermination,
    ResponseFlag::UpstreamRemoteReset,
    ResponseFlag::StreamIdleTimeout,
    ResponseFlag::DurationTimeout,
    ResponseFlag::DownstreamConnectionTermination,
    ResponseFlag::RateLimited,
    ResponseFlag::FaultInjected,
    ResponseFlag::DelayInjected,
];

fn flags_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ResponseFlags, D::Error> {
    let text = String::deserialize(d)?;
    let mut flags = ResponseFlags::EMPTY;
    for code in text.split(',').filter(|c| !c.is_empty() && *c != "-") {
        let flag = ALL_FLAGS
            .iter()
            .find(|f| f.code() == code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown response flag {code}")))?;
        flags.insert(*flag);
    }
    Ok(flags)
}

fn ms_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(d)?;
    Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
}

fn opt_ms_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(ms) => Duration::try_from_secs_f64(ms / 1000.0)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AccessLogEntry {
        AccessLogEntry {
            request_id: "id-1".into(),
            listener: "default/eg/http".into(),
            route: Some("httproute/default/x/rule/0/match/0".into()),
            cluster: Some("httproute/default/x/rule/0".into()),
            upstream_host: Some(([127, 0, 0, 1], 8080).into()),
            backend: Some("default/x".into()),
            replica: Some(1),
            method: Method::GET,
            path: PathAndQuery::from_static("/a?b=1"),
            status: 503,
            response_flags: ResponseFlags::from(ResponseFlag::UpstreamOverflow),
            attempts: 1,
            start: Duration::from_millis(5),
            duration: Duration::from_micros(1500),
            upstream_duration: None,
        }
    }

    #[test]
    fn json_lines_have_envoy_flags_and_ms() {
        let sink = JsonLinesSink::new(Vec::new());
        sink.log(&entry());
        sink.log(&entry());
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["response_flags"], "UO");
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["start_ms"], 5.0);
        assert_eq!(v["upstream_duration_ms"], serde_json::Value::Null);
        assert_eq!(v["upstream_host"], "127.0.0.1:8080");
        assert_eq!(v["replica"], 1);
        assert_eq!(
            (&v["method"], &v["path"]),
            (&"GET".into(), &"/a?b=1".into())
        );
    }

    #[test]
    fn json_lines_read_back_as_the_same_entry() {
        let mut e = entry();
        e.response_flags
            .insert(ResponseFlag::UpstreamRetryLimitExceeded);
        e.upstream_duration = Some(Duration::from_millis(3));
        for e in [entry(), e] {
            let line = serde_json::to_string(&e).unwrap();
            let back: AccessLogEntry = serde_json::from_str(&line).unwrap();
            assert_eq!(back, e, "{line}");
        }
        let none: AccessLogEntry = serde_json::from_str(
            &serde_json::to_string(&entry())
                .unwrap()
                .replace("\"UO\"", "\"-\""),
        )
        .unwrap();
        assert!(none.response_flags.is_empty());
    }

    #[test]
    fn file_sink_appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.jsonl");
        let sink = JsonLinesSink::create(&path).unwrap();
        sink.log(&entry());
        drop(sink);
        let sink = JsonLinesSink::create(&path).unwrap();
        sink.log(&entry());
        drop(sink);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[tokio::test]
    async fn broadcast_reaches_subscribers() {
        let sink = BroadcastSink::new(8);
        sink.log(&entry()); // nobody listening: dropped
        let mut rx = sink.subscribe();
        sink.log(&entry());
        let got = rx.recv().await.unwrap();
        assert_eq!(got.request_id, "id-1");
        assert!(rx.try_recv().is_err());
    }
}
