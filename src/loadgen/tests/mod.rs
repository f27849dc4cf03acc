//! Tests of the load generator: schedule math, recorder, client and engine against in-test servers.

mod client;
mod engine;
mod recorder;
mod schedule;
mod server;
