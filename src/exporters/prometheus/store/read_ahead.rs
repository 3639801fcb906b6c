//! A walk over stored series that asks the CPU for each series' label
//! text a few series before the walk reads it.
//!
//! A table's entries sit side by side, but each series' own label text is
//! an allocation of its own somewhere in the heap: walking a million
//! series (a scrape) otherwise waits for main memory once per series.
//! Prefetching the text [`DISTANCE`] series ahead overlaps those waits
//! with the rendering of the series before.

use std::collections::VecDeque;

use crate::model::prefetch::prefetch;

/// How many series ahead the label text is asked for: far enough that it
/// arrives before it is read (a series renders in about 100–200 ns, a
/// miss costs about 100 ns), near enough that it is still in L1.
pub const DISTANCE: usize = 8;

/// Most bytes of a text prefetched (three cache lines): label blocks are
/// mostly shorter, and the hardware prefetcher follows a longer one.
const MOST_BYTES: usize = 192;

/// Yields `inner`'s items in order, each one's bytes (`bytes_of`) asked
/// for [`DISTANCE`] items before it is yielded.
pub struct ReadAhead<'a, T, I> {
    inner: I,
    ahead: VecDeque<&'a T>,
    bytes_of: fn(&T) -> &[u8],
}

impl<'a, T, I: Iterator<Item = &'a T>> ReadAhead<'a, T, I> {
    pub fn new(inner: I, bytes_of: fn(&T) -> &[u8]) -> Self {
        Self {
            inner,
            ahead: VecDeque::with_capacity(DISTANCE),
            bytes_of,
        }
    }
}

impl<'a, T, I: Iterator<Item = &'a T>> Iterator for ReadAhead<'a, T, I> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        while self.ahead.len() < DISTANCE {
            let Some(item) = self.inner.next() else {
                break;
            };
            prefetch((self.bytes_of)(item), MOST_BYTES);
            self.ahead.push_back(item);
        }
        self.ahead.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (low, high) = self.inner.size_hint();
        let queued = self.ahead.len();
        (
            low.saturating_add(queued),
            high.and_then(|h| h.checked_add(queued)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(s: &String) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn yields_every_item_in_order_whatever_the_length() {
        for n in [0, 1, DISTANCE - 1, DISTANCE, DISTANCE + 1, 100] {
            let items: Vec<String> = (0..n).map(|i| "x".repeat(i * 7)).collect();
            let walked: Vec<&String> = ReadAhead::new(items.iter(), bytes_of).collect();
            assert_eq!(walked, items.iter().collect::<Vec<_>>(), "{n} items");
        }
    }

    #[test]
    fn counts_what_is_left_including_what_is_queued() {
        let items: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let mut walk = ReadAhead::new(items.iter(), bytes_of);
        assert_eq!(walk.size_hint(), (20, Some(20)));
        walk.next();
        assert_eq!(walk.size_hint(), (19, Some(19)));
        assert_eq!(walk.by_ref().count(), 19);
        assert_eq!(walk.next(), None);
    }
}
