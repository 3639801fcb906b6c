//! The pending-half store: one side of a request (a client span, or a
//! server span keyed by its parent) waits here for the other side, at most
//! `wait` and at most `max_items` halves. Time is passed in.
//!
//! Halves leave in arrival order, which is also expiry order (one `wait`
//! for all), so expiry pops from the front of a queue. A half that paired
//! leaves its queue entry behind; the entry is recognised as stale by its
//! sequence number and skipped, and the queue is compacted when stale
//! entries outnumber live ones.

use std::collections::VecDeque;

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

/// Trace id (16 bytes) then the client's span id (8 bytes).
pub type Key = [u8; 24];

/// The key of a span pair: the trace id and the client span's id.
pub fn key(trace_id: &[u8], span_id: &[u8]) -> Option<Key> {
    if trace_id.len() != 16 || span_id.len() != 8 || span_id.iter().all(|b| *b == 0) {
        return None;
    }
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(trace_id);
    k[16..].copy_from_slice(span_id);
    Some(k)
}

/// Which side of a request a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// CLIENT or PRODUCER.
    Client,
    /// SERVER or CONSUMER.
    Server,
}

/// What one span tells about its side of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Half {
    pub side: Side,
    pub service: Box<str>,
    pub seconds: f64,
    pub failed: bool,
    /// PRODUCER or CONSUMER.
    pub messaging: bool,
    /// Values of the configured extra dimensions, in config order.
    pub dims: Vec<Option<Box<str>>>,
    /// The peer named by `peer_attributes` (client halves only), for a
    /// virtual node edge if the server never shows up.
    pub peer: Option<Box<str>>,
}

struct Waiting {
    half: Half,
    seq: u64,
}

/// What [`PendingStore::offer`] did with a half.
#[derive(Debug, PartialEq)]
pub enum Offer {
    /// The other side was waiting: both sides, the waiting one removed
    /// from the store.
    Paired { client: Half, server: Half },
    /// Stored to wait for its pair.
    Stored,
    /// A half of the same side and key was waiting (a resent span, or a
    /// second consumer of one message); it was replaced, its wait kept.
    Replaced,
    /// The store holds `max_items`: the half is handed back, not stored.
    Full(Half),
}

/// Halves waiting for their pair.
pub struct PendingStore {
    map: HashMap<Key, Waiting>,
    /// (expires at, key, sequence), in arrival order.
    queue: VecDeque<(u64, Key, u64)>,
    max_items: usize,
    wait_ns: u64,
    next_seq: u64,
}

impl PendingStore {
    pub fn new(max_items: usize, wait_ns: u64) -> Self {
        Self {
            map: HashMap::new(),
            queue: VecDeque::new(),
            max_items,
            wait_ns,
            next_seq: 0,
        }
    }

    /// Halves waiting.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Pairs `half` with the waiting other side of `key`, or stores it.
    pub fn offer(&mut self, key: Key, half: Half, now_ns: u64) -> Offer {
        let full = self.map.len() >= self.max_items;
        let outcome = match self.map.entry(key) {
            Entry::Occupied(e) if e.get().half.side != half.side => {
                let waiting = e.remove().half;
                match half.side {
                    Side::Client => Offer::Paired {
                        client: half,
                        server: waiting,
                    },
                    Side::Server => Offer::Paired {
                        client: waiting,
                        server: half,
                    },
                }
            }
            Entry::Occupied(mut e) => {
                e.get_mut().half = half;
                Offer::Replaced
            }
            Entry::Vacant(_) if full => Offer::Full(half),
            Entry::Vacant(e) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                e.insert(Waiting { half, seq });
                self.queue
                    .push_back((now_ns.saturating_add(self.wait_ns), key, seq));
                Offer::Stored
            }
        };
        if matches!(outcome, Offer::Paired { .. }) {
            self.compact();
        }
        outcome
    }

    /// Removes every half whose wait ended at or before `now_ns`, oldest
    /// first, handing each to `expired`.
    pub fn expire(&mut self, now_ns: u64, mut expired: impl FnMut(Half)) {
        while let Some(&(at, key, seq)) = self.queue.front() {
            if at > now_ns {
                break;
            }
            self.queue.pop_front();
            if let Entry::Occupied(e) = self.map.entry(key)
                && e.get().seq == seq
            {
                expired(e.remove().half);
            }
        }
    }

    /// Drops queue entries of halves that paired, once they are the
    /// majority, so the queue stays within twice the live halves.
    fn compact(&mut self) {
        if self.queue.len() <= 2 * self.map.len() + 1024 {
            return;
        }
        let map = &self.map;
        self.queue
            .retain(|(_, key, seq)| map.get(key).is_some_and(|w| w.seq == *seq));
    }

    /// Queue entries, live or stale (for tests of the compaction).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
