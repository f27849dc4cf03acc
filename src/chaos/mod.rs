//! Chaos: the fault timeline and the fault relay between the proxy and the backends.

pub mod relay;
pub mod timeline;
