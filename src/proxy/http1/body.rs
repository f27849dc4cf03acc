//! Where a message body stands, and taking its next frame off a read buffer.

use bytes::{Bytes, BytesMut};
use http_body::Frame;

use super::{ChunkedDecoder, Decoded, FramingError};

/// Where a body stands.
#[derive(Debug)]
pub enum BodyState {
    /// This many bytes are still to come.
    Length(u64),
    /// Chunked coding. Boxed: the decoder keeps a trailer map, and every request and
    /// response moves its body state several times.
    Chunked(Box<ChunkedDecoder>),
    /// The body runs until the peer closes (responses only).
    UntilClose,
    /// The body ended.
    Done,
}

/// What the read buffer gave the body.
#[derive(Debug)]
pub enum Progress {
    /// The next frame (data, or the trailers that end a chunked body).
    Frame(Frame<Bytes>),
    /// The body ended.
    End,
    /// The buffer holds nothing more of it: read from the socket.
    NeedMore,
}

impl BodyState {
    /// Takes the next frame of the body off the front of `buf`.
    pub fn take(&mut self, buf: &mut BytesMut) -> Result<Progress, FramingError> {
        match self {
            BodyState::Done => Ok(Progress::End),
            BodyState::Length(left) if !buf.is_empty() => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                if *left == 0 {
                    *self = BodyState::Done;
                }
                Ok(Progress::Frame(Frame::data(buf.split_to(n).freeze())))
            }
            BodyState::UntilClose if !buf.is_empty() => {
                Ok(Progress::Frame(Frame::data(buf.split().freeze())))
            }
            BodyState::Chunked(decoder) => match decoder.decode(buf)? {
                Decoded::Data(data) => Ok(Progress::Frame(Frame::data(data))),
                Decoded::Trailers(trailers) => {
                    *self = BodyState::Done;
                    Ok(Progress::Frame(Frame::trailers(trailers)))
                }
                Decoded::End => {
                    *self = BodyState::Done;
                    Ok(Progress::End)
                }
                Decoded::NeedMore => Ok(Progress::NeedMore),
            },
            BodyState::Length(_) | BodyState::UntilClose => Ok(Progress::NeedMore),
        }
    }

    /// The peer closed the connection: whether that ends the body (rather than cutting it off).
    pub fn ends_at_close(&mut self) -> bool {
        match self {
            BodyState::UntilClose | BodyState::Done => {
                *self = BodyState::Done;
                true
            }
            _ => false,
        }
    }

    /// The body ended.
    pub fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    /// Bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            BodyState::Length(n) => Some(*n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }
}
