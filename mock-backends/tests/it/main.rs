//! Integration tests of mock-backends: real sockets on 127.0.0.1, small real delays.

mod binary;
mod faults;
mod replica;
mod util;
