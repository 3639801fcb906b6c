//! Staleness markers: what a scrape tells Prometheus when a series is
//! gone, remote write tells it too. A series that was in the last
//! collection and is not in this one (expired by `series_ttl`, ended by
//! a point with `NoRecordedValue`, a forecast that lost its model, a
//! span-metrics series that expired) gets one sample of Prometheus's
//! `StaleNaN` at this collection's time, so instant queries stop
//! returning it at once instead of after the storage's lookback (5
//! minutes), exactly as if Prometheus had scraped `/metrics`.
//!
//! The ledger keeps the last collection's compressed requests (the same
//! `Bytes` the send queue holds, so nothing is copied while they wait)
//! and reads the labels of a vanished series back from them: the only
//! memory it keeps between collections is one collection's compressed
//! size. Series are told apart by a hash of their encoded labels; a
//! collision costs a marker, never a sample.

use bytes::Bytes;

use super::encode::{RequestEncoder, STALE_NAN, labels_hash};

/// The requests of the last collection and the hashes of its series.
#[derive(Default)]
pub struct Ledger {
    previous: Vec<Bytes>,
    /// The last collection's series hashes, sorted, deduplicated.
    hashes: Vec<u64>,
    /// This collection's, until [`Ledger::remember`].
    current: Vec<u64>,
}

/// A previous request that could not be read back (never expected: we
/// wrote it).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("a remote-write request of the last collection is not snappy: {0}")]
    Snappy(#[from] snap::Error),
    #[error("a remote-write request of the last collection is truncated")]
    Truncated,
}

impl Ledger {
    /// Writes a staleness marker through `encoder` for every series of
    /// the last collection that this one (everything `encoder` has
    /// written) did not carry; the markers written.
    pub fn mark_vanished(&mut self, encoder: &mut RequestEncoder<'_>) -> Result<u64, LedgerError> {
        let mut current = encoder.take_written();
        current.sort_unstable();
        current.dedup();
        // The steady state (every series still there) is one merge of two
        // sorted lists; the requests are read back only when one is gone.
        let vanished = missing_from(&self.hashes, &current);
        self.current = current;
        if vanished.is_empty() {
            return Ok(0);
        }
        let mut marked = 0;
        let mut decoder = snap::raw::Decoder::new();
        let mut raw = Vec::new();
        let mut labels = Vec::new();
        for body in &self.previous {
            raw.resize(snap::raw::decompress_len(body)?, 0);
            let n = decoder.decompress(body, &mut raw)?;
            raw.truncate(n);
            let mut request = Fields(&raw);
            while let Some((field, series)) = request.next_field()? {
                if field != 1 {
                    continue;
                }
                if !series_labels(series, &mut labels)? {
                    continue;
                }
                if vanished.binary_search(&labels_hash(&labels)).is_ok() {
                    encoder.stale(&labels);
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }

    /// Remembers this collection's requests (and the series
    /// [`Ledger::mark_vanished`] found in it) for the next one.
    pub fn remember(&mut self, bodies: Vec<Bytes>) {
        self.previous = bodies;
        self.hashes = std::mem::take(&mut self.current);
    }
}

/// The values of sorted `before` that sorted `now` lacks.
fn missing_from(before: &[u64], now: &[u64]) -> Vec<u64> {
    let mut missing = Vec::new();
    let mut rest = now;
    for &h in before {
        while let [first, tail @ ..] = rest {
            if *first < h {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.first() != Some(&h) {
            missing.push(h);
        }
    }
    missing
}

/// Collects a `TimeSeries`' `Label` fields, as encoded, into `labels`;
/// false for one whose sample is itself a staleness marker (a series
/// already marked is not marked again).
fn series_labels(series: &[u8], labels: &mut Vec<u8>) -> Result<bool, LedgerError> {
    labels.clear();
    let mut fields = Fields(series);
    loop {
        let before = fields.0;
        let Some((field, body)) = fields.next_field()? else {
            return Ok(true);
        };
        match field {
            1 => labels.extend_from_slice(&before[..before.len() - fields.0.len()]),
            2 => {
                let mut sample = Fields(body);
                while let Some((f, value)) = sample.next_field()? {
                    if f == 1 && value == STALE_NAN.to_le_bytes() {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The fields of a protobuf message: (number, payload) for
/// length-delimited and fixed 64-bit ones (the varint ones' payload is
/// empty: none is needed here).
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, LedgerError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or(LedgerError::Truncated)?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(LedgerError::Truncated)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LedgerError> {
        if n > self.0.len() {
            return Err(LedgerError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Option<(u64, &'a [u8])>, LedgerError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let payload = match key & 7 {
            0 => {
                self.varint()?;
                &[][..]
            }
            1 => self.take(8)?,
            2 => {
                let len = self.varint()?;
                self.take(usize::try_from(len).map_err(|_| LedgerError::Truncated)?)?
            }
            5 => self.take(4)?,
            _ => return Err(LedgerError::Truncated),
        };
        Ok(Some((key >> 3, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::delivery::Batch;
    use crate::exporters::prometheus::render::Exposition;
    use crate::exporters::prometheus::store::LabelText;

    /// One collection of `series` (label blocks of `up`, value 1) after
    /// `ledger`'s: the staleness markers' label blocks, in the order
    /// written, and every sample's (block, is_stale).
    fn collect(ledger: &mut Ledger, series: &[&str], max_samples: usize) -> Vec<(String, bool)> {
        let mut batches: Vec<Batch> = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut encoder = RequestEncoder::new(1_000, max_samples, false, &[], &mut ready);
        for block in series {
            encoder.sample("up", "", LabelText::whole(block), None, 1.0);
        }
        ledger
            .mark_vanished(&mut encoder)
            .expect("our own requests");
        encoder.flush();
        drop(encoder);
        let mut out = Vec::new();
        for batch in &batches {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&batch.body)
                .expect("snappy");
            let mut request = Fields(&raw);
            while let Some((_, ts)) = request.next_field().expect("protobuf") {
                let mut labels = Vec::new();
                let fresh = series_labels(ts, &mut labels).expect("series");
                let mut text = String::new();
                let mut fields = Fields(&labels);
                while let Some((_, label)) = fields.next_field().expect("label") {
                    let mut parts = Fields(label);
                    let (_, name) = parts.next_field().expect("name").expect("name");
                    let (_, value) = parts.next_field().expect("value").expect("value");
                    if name != b"__name__" {
                        text.push_str(&format!(
                            "{}={} ",
                            String::from_utf8_lossy(name),
                            String::from_utf8_lossy(value)
                        ));
                    }
                }
                out.push((text.trim_end().to_string(), !fresh));
            }
        }
        ledger.remember(batches.into_iter().map(|b| b.body).collect());
        out
    }

    #[test]
    fn a_series_that_is_gone_gets_one_marker() {
        let mut ledger = Ledger::default();
        let first = collect(&mut ledger, &[r#"a="1""#, r#"a="2""#, r#"a="3""#], 2);
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|(_, stale)| !stale));

        // a=2 is gone: one marker, after the samples still there.
        let second = collect(&mut ledger, &[r#"a="1""#, r#"a="3""#], 2);
        assert_eq!(
            second,
            vec![
                ("a=1".to_string(), false),
                ("a=3".to_string(), false),
                ("a=2".to_string(), true),
            ]
        );

        // Marked once: the next collection does not mark it again, and
        // a series that comes back is an ordinary sample.
        let third = collect(&mut ledger, &[r#"a="1""#, r#"a="3""#], 2);
        assert!(third.iter().all(|(_, stale)| !stale), "{third:?}");
        let fourth = collect(&mut ledger, &[r#"a="1""#, r#"a="2""#], 2);
        assert_eq!(
            fourth,
            vec![
                ("a=1".to_string(), false),
                ("a=2".to_string(), false),
                ("a=3".to_string(), true),
            ]
        );
    }

    #[test]
    fn everything_gone_is_marked_and_nothing_before_the_first_collection() {
        let mut ledger = Ledger::default();
        assert!(collect(&mut ledger, &[], 10).is_empty());
        collect(&mut ledger, &[r#"a="1""#, r#"b="x""#], 10);
        let gone = collect(&mut ledger, &[], 10);
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|(_, stale)| *stale));
    }

    #[test]
    fn only_the_gone_are_looked_for() {
        assert_eq!(missing_from(&[1, 3, 5, 7], &[0, 3, 4, 7, 9]), vec![1, 5]);
        assert_eq!(missing_from(&[1, 2], &[]), vec![1, 2]);
        assert!(missing_from(&[], &[1]).is_empty());
        assert!(missing_from(&[2, 4], &[1, 2, 3, 4]).is_empty());
    }

    #[test]
    fn a_request_that_is_not_ours_is_an_error_not_a_panic() {
        let mut ledger = Ledger::default();
        let with_a_series_gone = |ledger: &mut Ledger, body: Vec<u8>| {
            ledger.current = vec![42];
            ledger.remember(vec![Bytes::from(body)]);
        };
        with_a_series_gone(&mut ledger, b"\xff\xff\xff\xff\x0fnot snappy".to_vec());
        let mut ready = |_: Batch| {};
        let mut encoder = RequestEncoder::new(1_000, 10, false, &[], &mut ready);
        assert!(ledger.mark_vanished(&mut encoder).is_err());
        let truncated = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0x7f, 0x01])
            .expect("snappy");
        with_a_series_gone(&mut ledger, truncated);
        assert!(matches!(
            ledger.mark_vanished(&mut encoder),
            Err(LedgerError::Truncated)
        ));
    }
}
