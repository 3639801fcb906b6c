//! The pending-half store: one side of a request (a client span, or a
//! server span keyed by its parent) waits here for the other side, at most
//! `wait` and at most `max_items` halves. Time is passed in.
//!
//! The connector splits its halves over several stores by trace id (both
//! halves of a request share it); `max_items` bounds them together, through
//! one count they share.
//!
//! A store keeps its halves in slots it reuses, found by their key's hash
//! (the key and hash are kept in the slot, so a table that grows never
//! hashes a key again). Halves leave in arrival order, which is also
//! expiry order (one `wait` for all), so expiry pops from the front of a
//! queue of slots. A half that paired leaves its queue entry behind; the
//! entry is recognised as stale by its slot's generation, bumped whenever
//! the slot is let go, and skipped; the queue is compacted when stale
//! entries outnumber live ones, without a lookup per entry.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;

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

/// Hashes pair keys: three words each, seeded once per process (the ids
/// are the senders', so the seed keeps them from choosing collisions).
#[derive(Clone, Default)]
pub struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    #[inline]
    pub fn hash(&self, key: &Key) -> u64 {
        let mut h = self.0.build_hasher();
        for word in key.chunks_exact(8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            h.write_u64(u64::from_le_bytes(bytes));
        }
        h.finish()
    }
}

/// Which side of a request a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// CLIENT or PRODUCER.
    Client,
    /// SERVER or CONSUMER.
    Server,
}

/// What one span tells about its side of a request. Kept small (the
/// extra dimension values and the peer, which the default configuration
/// never has, are boxed apart): halves are moved into a request's list,
/// a store and an outcome, and the stores hold thousands.
#[derive(Debug, Clone, PartialEq)]
pub struct Half<S = Arc<str>> {
    /// The service name: borrowed from the request while the request is
    /// read, shared by the halves of one resource once stored.
    pub service: S,
    pub seconds: f64,
    /// The extra dimensions' values and the peer, if either is there.
    extras: Option<Box<Extras>>,
    pub side: Side,
    pub failed: bool,
    /// PRODUCER or CONSUMER.
    pub messaging: bool,
}

/// The parts of a half most halves lack.
#[derive(Debug, Clone, PartialEq, Default)]
struct Extras {
    /// Values of the configured extra dimensions, in config order.
    dims: Vec<Option<Box<str>>>,
    /// The peer named by `peer_attributes` (client halves only), for a
    /// virtual node edge if the server never shows up.
    peer: Option<Box<str>>,
}

impl<S> Half<S> {
    /// A half with the values of the configured extra dimensions `dims`
    /// (in config order) and no peer.
    pub fn new(
        side: Side,
        service: S,
        seconds: f64,
        failed: bool,
        messaging: bool,
        dims: Vec<Option<Box<str>>>,
    ) -> Self {
        Self {
            service,
            seconds,
            extras: (!dims.is_empty()).then(|| Box::new(Extras { dims, peer: None })),
            side,
            failed,
            messaging,
        }
    }

    /// The values of the configured extra dimensions, in config order
    /// (empty without any).
    pub fn dims(&self) -> &[Option<Box<str>>] {
        self.extras.as_ref().map_or(&[], |e| &e.dims)
    }

    /// Notes the peer the half names.
    pub fn set_peer(&mut self, peer: Option<Box<str>>) {
        match (&mut self.extras, peer) {
            (Some(extras), peer) => extras.peer = peer,
            (None, None) => {}
            (extras @ None, peer) => {
                *extras = Some(Box::new(Extras {
                    dims: Vec::new(),
                    peer,
                }))
            }
        }
    }

    /// Takes the peer the half names, if it names one.
    pub fn take_peer(&mut self) -> Option<Box<str>> {
        self.extras.as_mut().and_then(|e| e.peer.take())
    }

    /// The half with its service name held as `service`.
    pub fn with_service<T>(self, service: T) -> Half<T> {
        Half {
            service,
            seconds: self.seconds,
            extras: self.extras,
            side: self.side,
            failed: self.failed,
            messaging: self.messaging,
        }
    }
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

/// Which of `shards` stores holds the halves of `key`'s trace.
pub fn shard_of(key: &Key, shards: usize) -> usize {
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    low.copy_from_slice(&key[..8]);
    high.copy_from_slice(&key[8..16]);
    let mixed = u64::from_le_bytes(low)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from_le_bytes(high))
        .wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    // The top bits are the best mixed.
    ((mixed >> 32) as usize) % shards.max(1)
}

/// Halves waiting for their pair.
pub struct PendingStore {
    /// The halves, each in a slot that is reused once it is let go.
    slots: Vec<Slot>,
    /// Slots not in use.
    free: Vec<u32>,
    /// The slot of each waiting half, by its key's hash.
    index: HashTable<u32>,
    hasher: KeyHasher,
    /// Halves waiting in this store and every store sharing the limit.
    total: Arc<AtomicUsize>,
    /// Each stored half's slot, in arrival order.
    queue: VecDeque<Queued>,
    max_items: usize,
    wait_ns: u64,
}

/// A slot of the store.
struct Slot {
    key: Key,
    hash: u64,
    /// Bumped each time the slot is let go, so queue entries of the
    /// halves it held before are told from its current half's.
    generation: u32,
    half: Option<Half>,
}

/// A stored half's place in the expiry queue.
#[derive(Clone, Copy)]
struct Queued {
    expires_ns: u64,
    slot: u32,
    generation: u32,
}

impl PendingStore {
    pub fn new(max_items: usize, wait_ns: u64) -> Self {
        Self::sharing(max_items, wait_ns, Arc::default())
    }

    /// A store whose `max_items` counts the halves of every store given
    /// the same `total`.
    pub fn sharing(max_items: usize, wait_ns: u64, total: Arc<AtomicUsize>) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: KeyHasher::default(),
            total,
            queue: VecDeque::new(),
            max_items,
            wait_ns,
        }
    }

    /// Halves waiting in this store.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Pairs `half` with the waiting other side of `key`, or stores it.
    pub fn offer(&mut self, key: Key, half: Half, now_ns: u64) -> Offer {
        let hash = self.hasher.hash(&key);
        let slots = &mut self.slots;
        let found = self.index.find_entry(hash, |&i| {
            slots.get(i as usize).is_some_and(|slot| slot.key == key)
        });
        let Ok(entry) = found else {
            return self.store(key, hash, half, now_ns);
        };
        let at = *entry.get() as usize;
        let Some(slot) = slots.get_mut(at) else {
            return Offer::Full(half);
        };
        match &mut slot.half {
            Some(waiting) if waiting.side == half.side => {
                *waiting = half;
                return Offer::Replaced;
            }
            _ => {}
        }
        entry.remove();
        let Some(waiting) = slot.half.take() else {
            return Offer::Full(half);
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(at as u32);
        self.total.fetch_sub(1, Ordering::Relaxed);
        self.compact();
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

    /// Stores a half whose key no half here has.
    fn store(&mut self, key: Key, hash: u64, half: Half, now_ns: u64) -> Offer {
        if !claim(&self.total, self.max_items) {
            return Offer::Full(half);
        }
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                self.slots.push(Slot {
                    key,
                    hash,
                    generation: 0,
                    half: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let Some(slot) = self.slots.get_mut(at as usize) else {
            // A free list naming no slot (which cannot be): the half is
            // handed back and its claim let go.
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Offer::Full(half);
        };
        slot.key = key;
        slot.hash = hash;
        slot.half = Some(half);
        let generation = slot.generation;
        let slots = &self.slots;
        self.index.insert_unique(hash, at, |&i| {
            slots.get(i as usize).map_or(0, |slot| slot.hash)
        });
        self.queue.push_back(Queued {
            expires_ns: now_ns.saturating_add(self.wait_ns),
            slot: at,
            generation,
        });
        Offer::Stored
    }

    /// Removes every half whose wait ended at or before `now_ns`, oldest
    /// first, handing each to `expired`.
    pub fn expire(&mut self, now_ns: u64, mut expired: impl FnMut(Half)) {
        while let Some(&queued) = self.queue.front() {
            if queued.expires_ns > now_ns {
                break;
            }
            self.queue.pop_front();
            if let Some(half) = self.take_queued(queued) {
                self.total.fetch_sub(1, Ordering::Relaxed);
                expired(half);
            }
        }
        if self.index.is_empty() && self.slots.len() > RETAINED_SLOTS {
            // After a burst, let its slots go.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.queue = VecDeque::new();
            self.index = HashTable::new();
        }
    }

    /// Lets go of the half a queue entry stands for, if its slot still
    /// holds it.
    fn take_queued(&mut self, queued: Queued) -> Option<Half> {
        let at = queued.slot as usize;
        let slot = self.slots.get_mut(at)?;
        if slot.generation != queued.generation {
            return None;
        }
        let half = slot.half.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        if let Ok(entry) = self.index.find_entry(slot.hash, |&i| i as usize == at) {
            entry.remove();
        }
        self.free.push(queued.slot);
        Some(half)
    }

    /// Drops queue entries of halves that paired, once they are the
    /// majority, so the queue stays within twice the live halves.
    fn compact(&mut self) {
        if self.queue.len() <= 2 * self.index.len() + 1024 {
            return;
        }
        let slots = &self.slots;
        self.queue.retain(|queued| {
            slots
                .get(queued.slot as usize)
                .is_some_and(|slot| slot.generation == queued.generation)
        });
    }

    /// Queue entries, live or stale (for tests of the compaction).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Slots held, in use or free (for tests of letting a burst go).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

/// Slots a store keeps once it is empty (more are let go: a burst's).
const RETAINED_SLOTS: usize = 4096;

/// Counts one more half in `total`, if it holds fewer than `max_items`.
fn claim(total: &AtomicUsize, max_items: usize) -> bool {
    total
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < max_items).then_some(n + 1)
        })
        .is_ok()
}
