//! Programmable mock HTTP backends.
