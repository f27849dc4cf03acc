//! The load generator: open- and closed-loop load, a keep-alive HTTP/1.1 client, samples, and
//! per-window HDR recorders.
//!
//! Data flow: [`schedule`] says when each request is due → [`engine::run_load`] paces workers,
//! each with one [`client::Connection`] → every settled request becomes a [`sample::Sample`] for
//! a [`sample::SampleSink`] (usually a [`recorder::WindowedRecorder`]) → [`summary::LoadSummary`]
//! at the end. Open-loop latency counts from the intended send time (coordinated omission is
//! corrected); memory does not grow with run length.

mod baton;
pub mod client;
pub mod engine;
pub mod flags;
pub mod interner;
pub mod recorder;
pub mod sample;
pub mod schedule;
mod sparse;
pub mod standalone;
pub mod summary;

#[cfg(test)]
mod tests;

pub use client::{Client, ClientError, Connection, RequestTemplate};
pub use engine::{DEFAULT_MAX_BACKLOG, DEFAULT_TIMEOUT, LoadError, LoadMode, LoadSpec, run_load};
pub use flags::{FlagSet, ResponseFlag};
pub use interner::Interner;
pub use recorder::{Aggregate, Observation, Observed, RecorderError, SeriesKey, WindowedRecorder};
pub use sample::{Outcome, ResponseInfo, Sample, SampleSink, TransportErrorKind};
pub use schedule::{Rate, Schedule, ScheduleError, Stage};
pub use summary::{LoadSummary, Percentiles};
