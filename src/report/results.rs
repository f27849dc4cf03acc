//! `results.json`: everything a finished (or interrupted) run measured, in the form reports,
//! CI scripts and `chaosgate compare` read. Its schema is committed as `docs/results.schema.json`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::charts::ChartInput;
use crate::chaos::timeline::TimelineEvent;
use crate::expect::evaluate::Verdict;

/// The version of this document's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunVerdict {
    /// Every expectation held.
    Passed,
    /// At least one expectation failed.
    Failed,
    /// The run stopped before its end; expectations were evaluated on what was measured.
    Incomplete,
}

/// One run of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResults {
    pub schema_version: u32,
    pub scenario: String,
    pub description: Option<String>,
    /// The scenario file, as given.
    pub file: String,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub runtime: String,
    pub seed: u64,
    /// Planned length of the run, seconds.
    pub duration_s: f64,
    /// How long it actually ran, seconds.
    pub elapsed_s: f64,
    pub complete: bool,
    /// Why the run stopped early, when it did.
    pub incomplete_reason: Option<String>,
    pub verdict: RunVerdict,
    pub expectations: Vec<Verdict>,
    pub routes: Vec<RouteStats>,
    pub loads: Vec<serde_json::Value>,
    pub faults: Vec<TimelineEvent>,
    /// The `explain` document: which policy governed each route rule and its status.
    pub policies: serde_json::Value,
    /// Final value of every proxy counter (`cluster.<name>.<stat>`).
    pub proxy_stats: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    /// Per-second series the charts are drawn from.
    pub series: ChartInput,
}

/// Requests of one route rule to one backend over the whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStats {
    /// `ns/name/rule/<i>`, or `(no route)` for requests the proxy did not route.
    pub route: String,
    /// `ns/name`, or null when unknown.
    pub backend: Option<String>,
    pub requests: u64,
    pub success: u64,
    pub success_rate: Option<f64>,
    pub latency_ms: LatencyMs,
    /// Count per Envoy response flag.
    pub flags: BTreeMap<String, u64>,
    /// Count per HTTP status.
    pub statuses: BTreeMap<String, u64>,
    pub transport_errors: u64,
}

/// Latency percentiles in milliseconds (null with no samples).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl RunResults {
    /// Writes `results.json` into `dir` (created if needed) and returns its path.
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("results.json");
        let json = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        // Write then rename, so a reader never sees half a file.
        let tmp = dir.join(".results.json.tmp");
        std::fs::write(&tmp, json + "\n")?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Reads a `results.json`.
    pub fn read(path: &Path) -> Result<RunResults, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a chaosgate results file: {e}", path.display()))
    }
}

/// Points `<out>/<scenario>/latest` at the newest run folder.
pub fn update_latest(scenario_dir: &Path, run_id: &str) -> io::Result<()> {
    let link = scenario_dir.join("latest");
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() || meta.is_file() => std::fs::remove_file(&link)?,
        Ok(_) => std::fs::remove_dir_all(&link)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(run_id, &link)
}

/// A UTC time as RFC 3339 (`2026-11-27T09:30:00Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_772_400)),
            "2026-11-27T09:40:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    /// `chaosgate report` re-renders a run from its file, so the file must give back the very
    /// numbers the run drew with. serde_json's default float parser is off by one ulp for about
    /// one 17-digit number in ten; these two are such numbers.
    #[test]
    fn results_read_back_bit_for_bit() {
        let awkward = [985.690_694_632_869_5_f64, 212.918_907_267_134_59];
        let doc = serde_json::json!({
            "schemaVersion": 1, "scenario": "s", "description": null, "file": "s.yaml",
            "runId": "r", "startedAt": "2026-11-27T09:00:00Z", "runtime": "embedded", "seed": 1,
            "durationS": awkward[0], "elapsedS": awkward[1], "complete": true,
            "incompleteReason": null, "verdict": "passed", "expectations": [], "routes": [],
            "loads": [], "faults": [], "policies": {}, "proxyStats": {}, "warnings": [],
            "series": {"title_prefix": "s", "duration_s": 3.0, "faults": [], "routes": [],
                       "replicas": [], "clusters": []}
        });
        let results: RunResults = serde_json::from_value(doc).expect("valid results document");
        let dir = tempfile::TempDir::new().expect("temp dir");
        let back = RunResults::read(&results.write(dir.path()).expect("write")).expect("read");
        assert_eq!(back.duration_s.to_bits(), awkward[0].to_bits());
        assert_eq!(back.elapsed_s.to_bits(), awkward[1].to_bits());
    }
}
