//! chaosgate's integration tests, one binary (see tests/integration/).

mod integration {
    pub mod browser;
    pub mod conformance;
    pub mod docker_run;
    pub mod explain_snapshots;
    pub mod invalid_scenarios;
    pub mod report;
    pub mod run;
    pub mod scenarios_library;
    pub mod support;
}
