//! A connection's read buffer: bytes received and not yet consumed, reused for every response.

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Size of a read buffer's first allocation; enough for typical heads and small bodies.
const INITIAL: usize = 8 * 1024;

/// `bytes[start..end]` is received and unconsumed; the rest is free space for the next read.
#[derive(Debug, Default)]
pub(super) struct ReadBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    /// The unconsumed bytes.
    pub(super) fn filled(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Marks the first `n` unconsumed bytes as used.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            // Empty again: the next read may use the whole buffer.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets everything received (the connection it came from is gone).
    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads once from `stream`, after what is already there; `Ok(0)` is the end of the stream.
    /// Unconsumed bytes are kept, so the buffer grows while they fill it; callers bound that.
    pub(super) async fn fill_from(&mut self, stream: &mut TcpStream) -> io::Result<usize> {
        if self.end == self.bytes.len() {
            self.make_room();
        }
        let read = stream.read(&mut self.bytes[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// Moves unconsumed bytes to the front, or grows when they fill the whole buffer.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else {
            let len = (self.bytes.len() * 2).max(INITIAL);
            self.bytes.resize(len, 0);
        }
    }
}
