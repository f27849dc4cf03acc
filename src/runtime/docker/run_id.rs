//! Run ids: short, unique per engine, valid in container and network names.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Names one run's containers and network (`chaosgate-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

/// Why a run id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run id {0:?} must be 1 to 40 characters of a-z, 0-9 and '-'")]
pub struct InvalidRunId(String);

impl RunId {
    /// A new id from the time, the process id and a per-process counter.
    pub fn generate() -> RunId {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        RunId(format!("{seconds:x}-{:x}-{n}", std::process::id()))
    }

    /// Checks a caller-chosen id.
    pub fn try_new(id: &str) -> Result<RunId, InvalidRunId> {
        let ok = !id.is_empty()
            && id.len() <= 40
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(RunId(id.to_owned()))
        } else {
            Err(InvalidRunId(id.to_owned()))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
