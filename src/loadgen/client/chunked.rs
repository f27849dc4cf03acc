//! An incremental decoder of chunked bodies (RFC 9112 §7.1) that only finds the end: the load
//! generator measures responses and drops their bytes.

/// Where a chunked body is, between calls to [`ChunkedBody::feed`].
#[derive(Debug, Default)]
pub(super) struct ChunkedBody {
    state: State,
    /// Hex digits of the size line so far, then the data bytes still to skip.
    size: u64,
}

/// The body does not follow the chunked grammar.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the size; an extension or the line end follows.
    SizeEnd,
    /// A chunk extension, skipped to the end of the line.
    Extension,
    /// Saw CR after the size line, expecting LF.
    SizeLf,
    /// Skipping `size` data bytes.
    Data,
    /// After the data, expecting CR (or a bare LF).
    DataCr,
    /// After the data's CR, expecting LF.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field, skipped to the end of the line.
    Trailer,
    /// Saw CR of the final empty line, expecting LF.
    EndLf,
    /// The body is complete.
    Done,
}

impl ChunkedBody {
    /// Reads what it can of `bytes`: how many bytes belong to the body, and whether it ended.
    /// Bytes past the end of the body are left alone.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(usize, bool), Malformed> {
        let mut at = 0;
        while at < bytes.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let available = (bytes.len() - at) as u64;
                let skip = self.size.min(available);
                self.size -= skip;
                // `skip` is at most the slice length left, so it fits in usize.
                at += skip as usize;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.state = self.step(bytes[at])?;
            at += 1;
        }
        Ok((at, self.state == State::Done))
    }

    /// The state after one byte of framing (anything but chunk data).
    fn step(&mut self, byte: u8) -> Result<State, Malformed> {
        let next = match (self.state, byte) {
            (State::SizeStart | State::Size, _) if byte.is_ascii_hexdigit() => {
                let digit = u64::from((byte as char).to_digit(16).ok_or(Malformed)?);
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(Malformed)?;
                State::Size
            }
            (State::Size | State::SizeEnd, b' ' | b'\t') => State::SizeEnd,
            (State::Size | State::SizeEnd, b';') => State::Extension,
            (State::Size | State::SizeEnd, b'\r') => State::SizeLf,
            (State::Size | State::SizeEnd | State::SizeLf | State::Extension, b'\n') => {
                self.size_line_ended()
            }
            (State::Extension, _) => State::Extension,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => State::SizeStart,
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::EndLf, b'\n') => State::Done,
            (State::Trailer, b'\n') => State::TrailerStart,
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            _ => return Err(Malformed),
        };
        Ok(next)
    }

    /// A size line ended: a zero size starts the trailers, any other its data.
    fn size_line_ended(&self) -> State {
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; `(bytes used, ended)`.
    fn feed_in_pieces(body: &[u8], step: usize) -> Result<(usize, bool), Malformed> {
        let mut decoder = ChunkedBody::default();
        let mut used = 0;
        for piece in body.chunks(step) {
            let (n, done) = decoder.feed(piece)?;
            used += n;
            if done {
                return Ok((used, true));
            }
        }
        Ok((used, false))
    }

    #[test]
    fn finds_the_end_in_any_split_and_leaves_what_follows() {
        let body = b"5\r\nhello\r\n1A;name=\"v;x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0 ; last\r\nx-trailer: 1\r\nother: 2\r\n\r\nNEXT";
        let end = body.len() - 4;
        for step in 1..=body.len() {
            assert_eq!(feed_in_pieces(body, step), Ok((end, true)), "step {step}");
        }
    }

    #[test]
    fn bare_line_feeds_are_accepted() {
        let body = b"3\nabc\n0\n\n";
        assert_eq!(feed_in_pieces(body, 1), Ok((body.len(), true)));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(feed_in_pieces(b"5\r\nhel", 2), Ok((6, false)));
        assert_eq!(feed_in_pieces(b"0\r\nx-t: 1\r\n", 3), Ok((11, false)));
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloX",
            b"5 z\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            assert_eq!(feed_in_pieces(body, 1), Err(Malformed), "{body:?}");
        }
    }
}
