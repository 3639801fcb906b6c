//! What one traces request (or one expiry round) decided about its span
//! halves, and those outcomes summed per series before the connector
//! takes its series lock: a request whose thousand spans draw one edge
//! updates that edge's series once, and two threads hand the lock back
//! and forth once per request rather than once per span.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash};
use std::ops::Deref;

use hashbrown::HashTable;

use std::sync::Arc;

use super::store::{Half, Side};
use super::{EdgeSeries, MESSAGING_SYSTEM, SpanCounts, USER, VIRTUAL_NODE};

/// What became of a span half (`S`: how its service name is held).
pub enum Done<S = Arc<str>> {
    /// The other side was waiting: one request between two services.
    Paired { client: Half<S>, server: Half<S> },
    /// One instrumented side of a request to or from a node that sends no
    /// spans: a database client (`half` the client, `peer` the
    /// database), a root server span (`half` the server, `peer` `user`),
    /// or a client half that expired naming its peer.
    OneSided {
        half: Half<S>,
        peer: Cow<'static, str>,
        connection_type: &'static str,
    },
    /// Its wait ended without the other side.
    Unpaired(Half<S>),
    /// The pending store was full.
    Dropped(Half<S>),
}

/// A completed request.
pub struct Edge<'a> {
    pub client: &'a str,
    pub server: &'a str,
    /// Empty for CLIENT→SERVER.
    pub connection_type: &'a str,
    pub failed: bool,
    pub client_seconds: f64,
    pub server_seconds: f64,
    pub client_dims: &'a [Option<Box<str>>],
    pub server_dims: &'a [Option<Box<str>>],
}

impl<S: Deref<Target = str>> Done<S> {
    /// The request this outcome completed, if any.
    pub fn edge(&self) -> Option<Edge<'_>> {
        match self {
            Done::Paired { client, server } => Some(Edge {
                client: &client.service,
                server: &server.service,
                connection_type: if client.messaging || server.messaging {
                    MESSAGING_SYSTEM
                } else {
                    ""
                },
                failed: client.failed || server.failed,
                client_seconds: client.seconds,
                server_seconds: server.seconds,
                client_dims: client.dims(),
                server_dims: server.dims(),
            }),
            Done::OneSided {
                half,
                peer,
                connection_type,
            } => {
                let (client, server, client_dims, server_dims): (_, _, &[_], &[_]) = match half.side
                {
                    Side::Client => (&*half.service, &**peer, half.dims(), &[]),
                    Side::Server => (&**peer, &*half.service, &[], half.dims()),
                };
                Some(Edge {
                    client,
                    server,
                    connection_type,
                    failed: half.failed,
                    // One side was seen: its duration stands for both, so
                    // every histogram count equals the request count.
                    client_seconds: half.seconds,
                    server_seconds: half.seconds,
                    client_dims,
                    server_dims,
                })
            }
            Done::Unpaired(_) | Done::Dropped(_) => None,
        }
    }
}

/// Values summed per key, read back in the order of each key's first
/// span in the request (so which series a request creates first, when
/// the cardinality limit nears, follows the spans' order as it did span
/// by span, not a hash order or the order the stores were visited).
pub struct Summed<K, V> {
    entries: Vec<(K, V)>,
    /// Per entry, the position of its first span in the request.
    first: Vec<u32>,
    index: HashTable<usize>,
    /// The entry the last span went to: spans come grouped by resource,
    /// so the next one usually goes there too, found without hashing.
    last: Option<usize>,
}

impl<K, V> Default for Summed<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            first: Vec::new(),
            index: HashTable::new(),
            last: None,
        }
    }
}

const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5e_6a_9b);

impl<K, V> Summed<K, V> {
    /// The value of the key `probe` stands for, for a span at position
    /// `at`; made by `make` (with the key from `own`) the first time.
    fn entry<Q>(
        &mut self,
        at: u32,
        probe: &Q,
        own: impl FnOnce(&Q) -> K,
        make: impl FnOnce() -> V,
    ) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Summed {
            entries,
            first,
            index,
            last,
        } = self;
        let repeat = last.filter(|&i| entries.get(i).is_some_and(|e| e.0.borrow() == probe));
        let slot = match repeat {
            // `first` already holds an earlier position.
            Some(i) => i,
            None => {
                let hash = HASHER.hash_one(probe);
                match index.find(hash, |&i| entries[i].0.borrow() == probe) {
                    Some(&i) => {
                        first[i] = first[i].min(at);
                        i
                    }
                    None => {
                        entries.push((own(probe), make()));
                        first.push(at);
                        let i = entries.len() - 1;
                        index.insert_unique(hash, i, |&j| HASHER.hash_one(entries[j].0.borrow()));
                        i
                    }
                }
            }
        };
        *last = Some(slot);
        &mut entries[slot].1
    }

    /// The keys and sums, in the order of their first spans.
    pub fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| self.first[i]);
        order.into_iter().map(|i| &self.entries[i])
    }
}

/// Requests per edge and halves per service over one request, keyed by
/// the series' dimension values (`client`, `server`, `connection_type`,
/// then `client_<d>`, `server_<d>` per extra dimension; and `client`,
/// `server`, `connection_type` for span counts).
#[derive(Default)]
pub struct Sums<'a> {
    pub edges: Summed<Vec<Option<&'a str>>, EdgeSeries>,
    pub spans: Summed<[Option<&'a str>; 3], SpanCounts>,
}

impl<'a> Sums<'a> {
    /// Adds `done` (each outcome with the position of the span that
    /// decided it), with the extra dimensions' `defaults` (for a side
    /// that has no span: a virtual node, a database) and latency
    /// `bounds`.
    pub fn add<S: Deref<Target = str>>(
        &mut self,
        done: &'a [(u32, Done<S>)],
        defaults: &[Option<&'a str>],
        bounds: &[f64],
    ) {
        let mut key: Vec<Option<&'a str>> = Vec::with_capacity(3 + 2 * defaults.len());
        for (at, outcome) in done {
            let at = *at;
            match outcome {
                Done::Unpaired(half) => self.span(at, half).unpaired += 1,
                Done::Dropped(half) => self.span(at, half).dropped += 1,
                _ => {
                    let Some(edge) = outcome.edge() else {
                        continue;
                    };
                    edge_key(&edge, defaults, &mut key);
                    self.edges
                        .entry(at, key.as_slice(), <[_]>::to_vec, || {
                            EdgeSeries::new(bounds.len())
                        })
                        .record(
                            edge.failed,
                            edge.client_seconds,
                            edge.server_seconds,
                            bounds,
                        );
                }
            }
        }
    }

    fn span<S: Deref<Target = str>>(&mut self, at: u32, half: &'a Half<S>) -> &mut SpanCounts {
        let service = Some(&*half.service);
        let (client, server) = match half.side {
            Side::Client => (service, None),
            Side::Server => (None, service),
        };
        let connection_type = half.messaging.then_some(MESSAGING_SYSTEM);
        self.spans.entry(
            at,
            &[client, server, connection_type],
            |k| *k,
            SpanCounts::default,
        )
    }
}

/// The root server spans of one request, summed per service and
/// dimension values as they are read: a root span draws an edge from
/// `user` at once, so it needs no outcome of its own, nor its own copy of
/// the service name.
#[derive(Default)]
pub struct Roots<'a> {
    sums: Vec<RootSum<'a>>,
    /// The sum the last root span went to (spans come grouped by
    /// resource).
    last: usize,
}

/// The root spans of one service and dimension values.
struct RootSum<'a> {
    service: &'a str,
    dims: Vec<Option<Box<str>>>,
    /// The position of its first span in the request.
    first: u32,
    series: EdgeSeries,
}

impl<'a> Roots<'a> {
    /// Adds a root span of `service` at position `at`.
    pub fn record(
        &mut self,
        at: u32,
        service: &'a str,
        dims: Vec<Option<Box<str>>>,
        failed: bool,
        seconds: f64,
        bounds: &[f64],
    ) {
        // Spans of one resource share its name's bytes: most compare on
        // the pointer.
        let same = |sum: &RootSum| {
            (std::ptr::eq(sum.service, service) || sum.service == service) && sum.dims == dims
        };
        let index = match self.sums.get(self.last) {
            Some(sum) if same(sum) => self.last,
            _ => match self.sums.iter().position(same) {
                Some(i) => i,
                None => {
                    self.sums.push(RootSum {
                        service,
                        dims,
                        first: at,
                        series: EdgeSeries::new(bounds.len()),
                    });
                    self.sums.len() - 1
                }
            },
        };
        self.last = index;
        if let Some(sum) = self.sums.get_mut(index) {
            sum.series.record(failed, seconds, seconds, bounds);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }
}

impl<'a> Sums<'a> {
    /// Adds the root spans' edges (`user` → service, `virtual_node`), with
    /// the extra dimensions' `defaults` (the `user` side's values) and
    /// `bounds` latency buckets.
    pub fn add_roots(&mut self, roots: &'a Roots<'a>, defaults: &[Option<&'a str>], bounds: usize) {
        let mut key: Vec<Option<&'a str>> = Vec::with_capacity(3 + 2 * defaults.len());
        for sum in &roots.sums {
            key.clear();
            key.extend([Some(USER), Some(sum.service), Some(VIRTUAL_NODE)]);
            for (i, default) in defaults.iter().enumerate() {
                key.push(*default);
                key.push(sum.dims.get(i).and_then(|d| d.as_deref()));
            }
            self.edges
                .entry(sum.first, key.as_slice(), <[_]>::to_vec, || {
                    EdgeSeries::new(bounds)
                })
                .add(&sum.series);
        }
    }
}

/// An edge's dimension values, in label order, into `key`; a side
/// without a value (a side no span was seen for) takes the dimension's
/// default.
fn edge_key<'a>(edge: &Edge<'a>, defaults: &[Option<&'a str>], key: &mut Vec<Option<&'a str>>) {
    key.clear();
    key.push(Some(edge.client));
    key.push(Some(edge.server));
    key.push((!edge.connection_type.is_empty()).then_some(edge.connection_type));
    for (i, default) in defaults.iter().enumerate() {
        key.push(
            edge.client_dims
                .get(i)
                .and_then(|d| d.as_deref())
                .or(*default),
        );
        key.push(
            edge.server_dims
                .get(i)
                .and_then(|d| d.as_deref())
                .or(*default),
        );
    }
}
