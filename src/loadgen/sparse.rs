//! A closed window's histogram, kept as its non-empty buckets only, delta- and varint-encoded.
//!
//! A dense 1 µs..3600 s, 3-digit histogram has ~23 500 slots (188 KB); a window rarely fills
//! more than a few hundred of them. Each non-empty bucket is stored as two LEB128 varints —
//! (value − previous value, count) — which is 2–4 bytes for typical latencies.

use hdrhistogram::Histogram;

/// Non-empty buckets of a histogram, in value order, compactly encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SparseBuckets {
    bytes: Vec<u8>,
}

impl SparseBuckets {
    /// Adds every recorded bucket of `histogram`.
    pub(crate) fn add_histogram(&mut self, histogram: &Histogram<u64>) {
        let incoming = histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()));
        if self.bytes.is_empty() {
            *self = Self::from_sorted(incoming);
        } else {
            *self = Self::from_sorted(merge_sorted(self.iter(), incoming));
        }
    }

    /// Records the buckets into `histogram` (values are bucket tops, so they land in the same
    /// buckets again).
    pub(crate) fn record_into(&self, histogram: &mut Histogram<u64>) {
        for (value, count) in self.iter() {
            histogram.saturating_record_n(value, count);
        }
    }

    /// The (value, count) pairs, in value order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut rest = self.bytes.as_slice();
        let mut value = 0u64;
        std::iter::from_fn(move || {
            let delta = read_varint(&mut rest)?;
            let count = read_varint(&mut rest)?;
            value = value.saturating_add(delta);
            Some((value, count))
        })
    }

    /// Encoded size in bytes.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn from_sorted(pairs: impl Iterator<Item = (u64, u64)>) -> Self {
        let mut bytes = Vec::new();
        let mut previous = 0u64;
        for (value, count) in pairs {
            write_varint(&mut bytes, value - previous);
            write_varint(&mut bytes, count);
            previous = value;
        }
        bytes.shrink_to_fit();
        Self { bytes }
    }
}

/// Merges two value-ordered pair streams, adding the counts of equal values.
fn merge_sorted(
    a: impl Iterator<Item = (u64, u64)>,
    b: impl Iterator<Item = (u64, u64)>,
) -> impl Iterator<Item = (u64, u64)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some(x), Some(y)) if x.0 == y.0 => {
            a.next();
            b.next();
            Some((x.0, x.1 + y.1))
        }
        (Some(x), Some(y)) if x.0 < y.0 => a.next(),
        (_, Some(_)) => b.next(),
        (Some(_), None) => a.next(),
        (None, None) => None,
    })
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        values.iter().for_each(|v| h.saturating_record(*v));
        h
    }

    #[test]
    fn round_trips_and_merges_exactly() {
        let a = histogram(&[1, 1, 2, 500, 70_000, 3_000_000_000]);
        let b = histogram(&[2, 3, 70_000, u64::MAX]);
        let mut sparse = SparseBuckets::default();
        sparse.add_histogram(&a);
        sparse.add_histogram(&b);
        let mut rebuilt = histogram(&[]);
        sparse.record_into(&mut rebuilt);
        let mut expected = histogram(&[]);
        expected.add(&a).expect("same bounds");
        expected.add(&b).expect("same bounds");
        assert_eq!(rebuilt, expected);
        assert_eq!(rebuilt.len(), 10);
        // 7 distinct buckets (u64::MAX is clamped to 3600 s), a few bytes each.
        assert_eq!(sparse.iter().count(), 7);
        assert!(sparse.byte_len() <= 7 * 6, "{}", sparse.byte_len());
    }

    #[test]
    fn varints_cover_the_whole_range() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 3, u64::MAX] {
            let mut buf = Vec::new();
            write_varint(&mut buf, v);
            let mut slice = buf.as_slice();
            assert_eq!(read_varint(&mut slice), Some(v));
            assert!(slice.is_empty());
        }
    }
}
