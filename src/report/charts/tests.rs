//! Renders every chart from synthetic data and inspects the decoded PNGs.

use std::collections::HashMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::axis::{YScale, window_width};
use super::distribution::nines;
use super::series::segments;
use super::style::{
    FAULT_SHADE, HEIGHT, LEGEND_WIDTH, TITLE_HEIGHT, WIDTH, blended_over_background, fmt_nines,
    fmt_value,
};
use super::*;

type Chart = fn(&ChartInput, &Path) -> Result<ChartFile, ChartError>;

const CHARTS: [(&str, Chart); 5] = [
    ("latency_over_time", latency_over_time),
    ("outcomes_over_time", outcomes_over_time),
    ("traffic_share", traffic_share),
    ("latency_distribution", latency_distribution),
    ("proxy_state", proxy_state),
];

/// A 60 s run of two routes: replica orders/1 fails from 20 s to 35 s (its traffic moves to the
/// other replicas, the breaker overflows, hosts are ejected), then payments gets slow 40–50 s.
fn sample_input() -> ChartInput {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let down = |t: f64| (20.0..35.0).contains(&t);
    let slow = |t: f64| (40.0..50.0).contains(&t);
    let mut routes = Vec::new();
    for (name, base_ms) in [("orders", 3.0), ("payments", 6.0)] {
        let mut points = Vec::new();
        for s in 0..60 {
            let t = f64::from(s);
            let requests = 200 + rng.random_range(0..20);
            let (mut uo, mut ut, mut uh, mut rl, mut other) = (0, 0, 0, 0, rng.random_range(0..3));
            if name == "orders" && down(t) {
                uo = rng.random_range(20..50);
                uh = if t < 23.0 { 15 } else { 0 };
                other += 5;
            }
            if name == "payments" && slow(t) {
                ut = rng.random_range(10..30);
            }
            if name == "payments" && s % 10 == 0 {
                rl = 12;
            }
            let success = requests - uo - ut - uh - rl - other;
            let spike = if (name == "payments" && slow(t)) || (name == "orders" && down(t)) {
                300.0
            } else {
                0.0
            };
            points.push(SecondPoint {
                t_s: t,
                requests,
                success,
                overflow_uo: uo,
                ratelimited_rl: rl,
                timeout_ut: ut,
                no_healthy_uh: uh,
                other_errors: other,
                p50_ms: Some(base_ms + rng.random_range(0.0..1.0) + spike / 10.0),
                p99_ms: Some(base_ms * 4.0 + rng.random_range(0.0..8.0) + spike),
            });
        }
        let percentiles = [
            0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
        ]
        .iter()
        .map(|&p| {
            let x = nines(p).unwrap_or(6.5);
            (p, base_ms * (1.0 + x * x * 8.0))
        })
        .collect();
        routes.push(RouteSeries {
            name: name.to_owned(),
            points,
            percentiles,
        });
    }
    let orders: Vec<ReplicaSeries> = (0..3)
        .map(|r| ReplicaSeries {
            name: format!("orders/{r}"),
            points: (0..60)
                .map(|s| {
                    let t = f64::from(s);
                    let served = match (r, down(t)) {
                        (1, true) => 0,
                        (_, true) => 100 + rng.random_range(0..10),
                        _ => 66 + rng.random_range(0..6),
                    };
                    (t, served)
                })
                .collect(),
        })
        .collect();
    let payments = (0..2).map(|r| ReplicaSeries {
        name: format!("payments/{r}"),
        points: (0..60)
            .map(|s| (f64::from(s), 90 + r * 20 + rng.random_range(0..10)))
            .collect(),
    });
    let replicas = orders.into_iter().chain(payments).collect();
    let cluster = |name: &str, load: f64, ejecting: bool| {
        let down = |t: f64| ejecting && down(t);
        let series = |f: &dyn Fn(f64) -> f64| {
            (0..120)
                .map(|i| f64::from(i) * 0.5)
                .map(|t| (t, f(t)))
                .collect()
        };
        ClusterSeries {
            name: name.to_owned(),
            active_requests: series(&|t| {
                if down(t) {
                    100.0
                } else {
                    load + (t * 0.7).sin() * 5.0
                }
            }),
            pending: series(&|t| {
                if down(t) {
                    50.0
                } else {
                    (load / 10.0 + (t * 0.3).cos() * 2.0).max(0.0)
                }
            }),
            max_requests_limit: Some(100.0),
            max_pending_limit: Some(50.0),
            ejected_hosts: series(&|t| {
                if ejecting && (22.0..36.0).contains(&t) {
                    1.0
                } else {
                    0.0
                }
            }),
            unhealthy_hosts: series(&|t| {
                if ejecting && (24.0..37.0).contains(&t) {
                    1.0
                } else {
                    0.0
                }
            }),
        }
    };
    ChartInput {
        title_prefix: "breaker-failover".to_owned(),
        duration_s: 60.0,
        faults: vec![
            FaultSpan {
                label: "kill orders/1".to_owned(),
                start_s: 20.0,
                end_s: 35.0,
            },
            FaultSpan {
                label: "delay payments 300ms".to_owned(),
                start_s: 40.0,
                end_s: 50.0,
            },
        ],
        routes,
        replicas,
        clusters: vec![
            cluster("orders", 40.0, true),
            cluster("payments", 20.0, false),
        ],
    }
}

fn decode(file: &ChartFile) -> image::RgbImage {
    match image::open(&file.path) {
        Ok(img) => img.to_rgb8(),
        Err(e) => panic!("{} does not decode: {e}", file.path.display()),
    }
}

/// Pixel counts per colour inside the plot body (below the title, left of the legend).
fn body_colours(img: &image::RgbImage) -> HashMap<[u8; 3], usize> {
    let mut counts = HashMap::new();
    let right = img.width() - LEGEND_WIDTH;
    for y in TITLE_HEIGHT..img.height() {
        for x in 0..right {
            *counts.entry(img.get_pixel(x, y).0).or_insert(0) += 1;
        }
    }
    counts
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= 2)
}

#[test]
fn every_chart_renders_with_content_and_expected_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = sample_input();
    for (name, chart) in CHARTS {
        let file = match chart(&input, dir.path()) {
            Ok(f) => f,
            Err(e) => panic!("{name}: {e}"),
        };
        assert_eq!(file.path, dir.path().join(format!("{name}.png")));
        let img = decode(&file);
        assert_eq!(
            (img.width(), img.height()),
            (file.width, file.height),
            "{name}"
        );
        assert_eq!(img.width(), WIDTH, "{name}");
        assert!(img.height() >= HEIGHT, "{name}");
        let counts = body_colours(&img);
        let total: usize = counts.values().sum();
        let ink: usize = counts
            .iter()
            .filter(|(c, _)| **c != [255, 255, 255])
            .map(|(_, n)| n)
            .sum();
        // Colours that cover a real area, not just anti-aliasing fringes.
        let solid = counts
            .iter()
            .filter(|(c, n)| **c != [255, 255, 255] && **n >= 200)
            .count();
        assert!(
            ink * 20 > total,
            "{name}: only {ink} of {total} body pixels are drawn"
        );
        assert!(solid > 2, "{name}: only {solid} distinct colours");
    }
}

#[test]
fn multi_panel_charts_grow_with_routes_and_clusters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut input = sample_input();
    let one = outcomes_over_time(&input, dir.path()).expect("outcomes");
    let one_height = decode(&one).height();
    let mut third = input.routes[0].clone();
    third.name = "inventory".to_owned();
    input.routes.push(third);
    let three = outcomes_over_time(&input, dir.path()).expect("outcomes");
    assert_eq!(decode(&three).height(), three.height);
    assert!(
        three.height > one_height,
        "{} <= {one_height}",
        three.height
    );
    let two = proxy_state(&input, dir.path()).expect("proxy");
    assert_eq!(decode(&two).height(), two.height);
    input.clusters.truncate(1);
    let single = proxy_state(&input, dir.path()).expect("proxy");
    assert!(two.height > single.height);
}

#[test]
fn fault_window_is_shaded_where_it_happened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shade = blended_over_background(FAULT_SHADE);
    let mut input = sample_input();
    input.faults.truncate(1); // 20–35 s of 60 s
    for (name, chart) in [
        ("latency_over_time", latency_over_time as Chart),
        ("proxy_state", proxy_state),
    ] {
        let img = decode(&chart(&input, dir.path()).expect("chart"));
        let xs: Vec<u32> = img
            .enumerate_pixels()
            .filter(|(x, y, p)| {
                *y >= TITLE_HEIGHT && *x < WIDTH - LEGEND_WIDTH && close(p.0, shade)
            })
            .map(|(x, _, _)| x)
            .collect();
        assert!(xs.len() > 2000, "{name}: {} shaded pixels", xs.len());
        let (lo, hi) = (
            xs.iter().min().copied().unwrap_or(0),
            xs.iter().max().copied().unwrap_or(0),
        );
        let body = f64::from(WIDTH - LEGEND_WIDTH);
        // The plot spans most of the body; 20–35 s of 60 s lies a little left of its centre.
        let centre = f64::from(lo + hi) / 2.0 / body;
        let width = f64::from(hi - lo) / body;
        assert!((0.35..0.55).contains(&centre), "{name}: centre at {centre}");
        assert!((0.15..0.30).contains(&width), "{name}: width {width}");

        let mut calm = input.clone();
        calm.faults.clear();
        let img = decode(&chart(&calm, dir.path()).expect("chart"));
        let shaded = img.pixels().filter(|p| close(p.0, shade)).count();
        assert!(
            shaded < 50,
            "{name}: {shaded} shade-coloured pixels without a fault"
        );
    }
}

#[test]
fn empty_input_renders_every_chart_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files =
        render_all(&ChartInput::default(), &dir.path().join("nested/charts")).expect("render_all");
    assert_eq!(files.len(), 5);
    for file in &files {
        let img = decode(file);
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        let counts = body_colours(&img);
        let ink: usize = counts
            .iter()
            .filter(|(c, _)| **c != [255, 255, 255])
            .map(|(_, n)| n)
            .sum();
        // The "no data" message and nothing else.
        assert!(
            (200..20_000).contains(&ink),
            "{}: {ink} drawn pixels",
            file.path.display()
        );
    }
}

#[test]
fn degenerate_values_still_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = ChartInput {
        title_prefix: String::new(),
        duration_s: 0.0,
        faults: vec![
            FaultSpan {
                label: "instant".to_owned(),
                start_s: 0.0,
                end_s: 0.0,
            },
            FaultSpan {
                label: "backwards".to_owned(),
                start_s: 5.0,
                end_s: 1.0,
            },
            FaultSpan {
                label: "nan".to_owned(),
                start_s: f64::NAN,
                end_s: 2.0,
            },
        ],
        routes: vec![RouteSeries {
            name: "r".to_owned(),
            points: vec![
                SecondPoint {
                    t_s: 0.0,
                    requests: 3,
                    success: 3,
                    p50_ms: Some(f64::NAN),
                    p99_ms: Some(2.0),
                    ..Default::default()
                },
                SecondPoint {
                    t_s: f64::INFINITY,
                    requests: 1,
                    success: 1,
                    p50_ms: Some(-1.0),
                    ..Default::default()
                },
            ],
            percentiles: vec![
                (f64::NAN, 1.0),
                (100.0, 9.0),
                (-3.0, 1.0),
                (50.0, f64::INFINITY),
                (99.0, 4.0),
            ],
        }],
        replicas: vec![ReplicaSeries {
            name: "a/0".to_owned(),
            points: vec![(0.0, 5)],
        }],
        clusters: vec![ClusterSeries {
            name: "c".to_owned(),
            active_requests: vec![(0.0, 1.0), (1.0, f64::NAN)],
            max_requests_limit: Some(f64::INFINITY),
            ejected_hosts: vec![(0.5, 1.0)],
            ..Default::default()
        }],
    };
    let files = render_all(&input, dir.path()).expect("render_all");
    for file in &files {
        let img = decode(file);
        assert_eq!((img.width(), img.height()), (file.width, file.height));
    }
}

#[test]
fn unwritable_directory_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let err = latency_over_time(&sample_input(), &blocker).expect_err("a file is not a directory");
    assert!(matches!(err, ChartError::CreateDir { .. }), "{err}");
}

#[test]
fn input_round_trips_through_json() {
    // Values exact in binary, so equality after the text round trip is meaningful.
    let input = ChartInput {
        title_prefix: "s".to_owned(),
        duration_s: 10.5,
        faults: vec![FaultSpan {
            label: "f".to_owned(),
            start_s: 1.25,
            end_s: 2.5,
        }],
        routes: vec![RouteSeries {
            name: "r".to_owned(),
            points: vec![SecondPoint {
                t_s: 1.0,
                requests: 4,
                success: 3,
                timeout_ut: 1,
                p50_ms: Some(0.5),
                ..Default::default()
            }],
            percentiles: vec![(99.5, 12.0)],
        }],
        replicas: vec![ReplicaSeries {
            name: "b/0".to_owned(),
            points: vec![(0.0, 7)],
        }],
        clusters: vec![ClusterSeries {
            name: "c".to_owned(),
            max_pending_limit: Some(8.0),
            pending: vec![(0.5, 2.0)],
            ..Default::default()
        }],
    };
    let json = serde_json::to_string(&input).expect("serialize");
    assert!(json.contains("\"p99_ms\":null"), "{json}");
    let back: ChartInput = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, input);
}

#[test]
fn axis_helpers() {
    assert_eq!(nines(0.0), Some(0.0));
    assert!((nines(99.9).unwrap_or(0.0) - 3.0).abs() < 1e-9);
    assert_eq!(nines(100.0), None);
    assert_eq!(nines(99.999_999), Some(6.0));
    assert_eq!(nines(100.5), None);
    assert_eq!(nines(f64::NAN), None);
    assert_eq!(fmt_nines(0.0), "0%");
    assert_eq!(fmt_nines(1.0), "90%");
    assert_eq!(fmt_nines(2.0), "99%");
    assert_eq!(fmt_nines(4.0), "99.99%");
    assert_eq!(fmt_value(0.0), "0");
    assert_eq!(fmt_value(0.25), "0.25");
    assert_eq!(fmt_value(2.5), "2.5");
    assert_eq!(fmt_value(40.0), "40");
    assert_eq!(fmt_value(1200.0), "1200");
    assert_eq!(fmt_value(15000.0), "15k");
    assert!(matches!(
        YScale::for_values([2.0, 300.0]),
        YScale::Log { .. }
    ));
    assert!(matches!(
        YScale::for_values([2.0, 90.0, 0.0]),
        YScale::Linear { .. }
    ));
    assert_eq!(YScale::for_values([]), YScale::Linear { max: 1.0 });
    let ticks = YScale::Log {
        min: 2.2,
        max: 450.0,
    }
    .log_ticks();
    assert_eq!(ticks, vec![5.0, 10.0, 20.0, 50.0, 100.0, 200.0]);
    let wide = YScale::Log {
        min: 0.05,
        max: 2e5,
    }
    .log_ticks();
    assert_eq!(wide.len(), 7, "{wide:?}"); // 0.1 … 100000, powers of ten only
    assert!(YScale::Linear { max: 10.0 }.log_ticks().is_empty());
    assert_eq!(
        YScale::Log {
            min: 1.0,
            max: 1000.0
        }
        .to_axis(0.0),
        0.0
    );
    assert_eq!(window_width([0.0, 0.5, 1.0, 1.0]), 0.5);
    assert_eq!(window_width([3.0]), 1.0);
    let segs = segments([
        (0.0, Some(1.0)),
        (1.0, None),
        (2.0, Some(2.0)),
        (3.0, Some(f64::NAN)),
        (4.0, Some(3.0)),
        (5.0, Some(4.0)),
    ]);
    assert_eq!(
        segs,
        vec![
            vec![(0.0, 1.0)],
            vec![(2.0, 2.0)],
            vec![(4.0, 3.0), (5.0, 4.0)]
        ]
    );
}

/// Refreshes `docs/images/` when `CHAOSGATE_WRITE_DOC_IMAGES` is set; otherwise renders the same
/// images into a temp dir, so the documented examples are always renderable.
#[test]
fn documentation_images() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = if std::env::var_os("CHAOSGATE_WRITE_DOC_IMAGES").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images")
    } else {
        tmp.path().to_path_buf()
    };
    let files = render_all(&sample_input(), &dir).expect("render_all");
    assert!(files.iter().all(|f| f.path.exists()));
}
