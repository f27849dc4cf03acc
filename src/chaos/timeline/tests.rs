use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::scenario::diag::SourceDoc;
use crate::scenario::spec::parse_scenario;
use crate::scenario::yaml::parse_documents;

fn spec(faults: &str) -> ScenarioSpec {
    let text = format!(
        "apiVersion: chaosgate.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: t}}\nspec:\n  backends:\n    - {{name: api, replicas: 3}}\n  load:\n    - {{path: /, rate: 10, duration: 20s}}\n  faults:\n{faults}"
    );
    let doc = SourceDoc {
        file: std::sync::Arc::new("t.yaml".into()),
        doc: parse_documents(&text).unwrap().remove(0),
    };
    parse_scenario(&doc, &doc.doc.value)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .spec
}

const OVERLAPPING: &str = "    - {backend: api, replicas: [0], at: 2s, duration: 6s, type: partition}\n    - {backend: api, replicas: [0, 1], at: 4s, duration: 2s, type: latency, latency: 100ms}\n    - {backend: api, at: 8s, type: kill}\n";

#[test]
fn changes_are_in_time_order_with_ends_first() {
    let s = spec(
        "    - {backend: api, at: 2s, duration: 3s, type: hang}\n    - {backend: api, at: 5s, duration: 1s, type: reset}\n",
    );
    let order: Vec<(u64, usize, Edge)> = changes(&s)
        .iter()
        .map(|c| (c.at.as_secs(), c.fault, c.edge))
        .collect();
    assert_eq!(
        order,
        [
            (2, 0, Edge::Start),
            (5, 0, Edge::End),
            (5, 1, Edge::Start),
            (6, 1, Edge::End)
        ]
    );
}

#[test]
fn overlapping_faults_compose_per_replica() {
    let s = spec(OVERLAPPING);
    let at = |r, t| {
        active_at(&s, "default/api", r, Duration::from_secs(t))
            .iter()
            .map(|k| k.type_name())
            .collect::<Vec<_>>()
    };
    assert_eq!(at(0, 1), Vec::<&str>::new());
    assert_eq!(at(0, 3), ["partition"]);
    assert_eq!(at(0, 5), ["partition", "latency"]);
    assert_eq!(at(1, 5), ["latency"]);
    assert_eq!(at(2, 5), Vec::<&str>::new());
    assert_eq!(at(0, 7), ["partition"]);
    assert_eq!(at(2, 9), ["kill"]);
}

/// One apply call: milliseconds into the run, backend, replica, fault types.
type Call = (u64, String, usize, Vec<&'static str>);

/// Remembers every apply call with the (paused) time it happened at.
struct Recorder {
    start: Instant,
    calls: Mutex<Vec<Call>>,
}

impl FaultTarget for Recorder {
    fn apply<'a>(
        &'a self,
        backend: &'a str,
        replica: usize,
        active: &'a [FaultKind],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        let t = self.start.elapsed().as_millis() as u64;
        let kinds = active.iter().map(|k| k.type_name()).collect();
        self.calls
            .lock()
            .unwrap()
            .push((t, backend.to_string(), replica, kinds));
        Box::pin(async move {
            if replica == 2 {
                Err("replica gone".to_string())
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn applies_each_change_on_time_and_records_it() {
    let s = spec(OVERLAPPING);
    let start = Instant::now();
    let target = Recorder {
        start,
        calls: Mutex::new(Vec::new()),
    };
    let events = run_timeline(&s, start, &target, CancellationToken::new()).await;
    let calls = target.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            (2000, "default/api".to_string(), 0, vec!["partition"]),
            (
                4000,
                "default/api".to_string(),
                0,
                vec!["partition", "latency"]
            ),
            (4000, "default/api".to_string(), 1, vec!["latency"]),
            (6000, "default/api".to_string(), 0, vec!["partition"]),
            (6000, "default/api".to_string(), 1, vec![]),
            (8000, "default/api".to_string(), 0, vec!["kill"]),
            (8000, "default/api".to_string(), 1, vec!["kill"]),
            (8000, "default/api".to_string(), 2, vec!["kill"]),
        ]
    );
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].edge, Edge::Start);
    assert_eq!(events[4].kind, "kill");
    assert_eq!(events[4].error.as_deref(), Some("replica 2: replica gone"));
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_the_timeline() {
    let s = spec(OVERLAPPING);
    let start = Instant::now();
    let target = Recorder {
        start,
        calls: Mutex::new(Vec::new()),
    };
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stopper.cancel();
    });
    let events = run_timeline(&s, start, &target, cancel).await;
    assert_eq!(events.len(), 1);
}
