//! The scenario's loads as load-generator specs aimed at the proxy's listeners.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use crate::loadgen::engine::{LoadMode, LoadSpec};
use crate::loadgen::schedule::{Rate, Schedule, Stage};
use crate::scenario::spec::{LoadShape, LoadSpec as ScenarioLoad};

/// One scenario load as a load-generator spec; `index` is its position in `spec.load`.
pub fn load_spec(
    load: &ScenarioLoad,
    index: usize,
    target: SocketAddr,
    request_id_prefix: &str,
) -> Result<LoadSpec, String> {
    let rate = |r: f64| Rate::try_new(r).map_err(|e| format!("load {}: {e}", load.name));
    let mode = match &load.shape {
        LoadShape::Rate(r) => LoadMode::Open(
            Schedule::constant(rate(*r)?).map_err(|e| format!("load {}: {e}", load.name))?,
        ),
        LoadShape::Concurrency(n) => LoadMode::Closed {
            concurrency: NonZeroUsize::new(*n as usize)
                .ok_or_else(|| format!("load {}: concurrency must be above 0", load.name))?,
        },
        LoadShape::Stages { start_rate, stages } => {
            let stages = stages
                .iter()
                .map(|s| {
                    Ok(Stage {
                        duration: s.duration,
                        rate: rate(s.rate)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            LoadMode::Open(
                Schedule::stages(rate(*start_rate)?, &stages)
                    .map_err(|e| format!("load {}: {e}", load.name))?,
            )
        }
    };
    let mut spec = LoadSpec::new(load.name.clone(), target, mode, load.duration);
    spec.index = u16::try_from(index).map_err(|_| "too many loads".to_string())?;
    spec.host = load.host.clone();
    spec.method = load.method.clone();
    spec.path = load.path.clone();
    spec.headers = load.headers.clone();
    spec.start = load.start;
    spec.timeout = load.timeout;
    if let Some(c) = load.connections.and_then(|c| NonZeroUsize::new(c as usize)) {
        spec.connections = c;
    }
    spec.request_id_prefix = Some(request_id_prefix.to_string());
    Ok(spec)
}
