//! Label text shared between the series of a family: the run of labels
//! every series of a scope repeats (`instance`, `job`, `otel_scope_*`) is
//! kept once, counted by its users, and each series keeps the rest of its
//! label block with the position the shared run goes in ([`Splice`]).
//! [`LabelText`] is a series' whole block seen through both parts.

use std::fmt;

use hashbrown::HashTable;

use super::labels::label_hash;

/// Where a series' shared run goes: the id of the run in its family's
/// [`SharedLabels`] (0: none) and the byte offset in the series' own text
/// it is spliced in at. Four bytes, so it fits beside the series' other
/// fields without growing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Splice(u32);

/// Offsets up to this fit in a [`Splice`].
const MAX_OFFSET: usize = (1 << OFFSET_BITS) - 1;
const OFFSET_BITS: u32 = 12;
/// Ids up to this fit in a [`Splice`].
const MAX_ID: usize = (1 << (32 - OFFSET_BITS)) - 1;

impl Splice {
    pub const NONE: Self = Self(0);

    fn new(id: u32, offset: usize) -> Self {
        Self((id << OFFSET_BITS) | offset as u32)
    }

    fn id(self) -> u32 {
        self.0 >> OFFSET_BITS
    }

    fn offset(self) -> usize {
        (self.0 & MAX_OFFSET as u32) as usize
    }
}

struct SharedText {
    text: Box<str>,
    hash: u64,
    users: u32,
}

/// The shared runs of one family, by id (1-based) and by text.
#[derive(Default)]
pub struct SharedLabels {
    texts: Vec<Option<SharedText>>,
    by_text: HashTable<u32>,
    free: Vec<u32>,
}

impl SharedLabels {
    /// Splits a label block into the series' own text and its splice:
    /// the `shared` byte range of `text` is kept here (counted once more)
    /// and cut out of the returned own text. An empty range, or one whose
    /// offset or id does not fit a [`Splice`], keeps the whole block.
    pub fn split(&mut self, text: &str, shared: std::ops::Range<usize>) -> (Box<str>, Splice) {
        let Some(run) = text.get(shared.clone()).filter(|r| !r.is_empty()) else {
            return (text.into(), Splice::NONE);
        };
        if shared.start > MAX_OFFSET {
            return (text.into(), Splice::NONE);
        }
        let Some(id) = self.acquire(run) else {
            return (text.into(), Splice::NONE);
        };
        let mut own = String::with_capacity(text.len() - run.len());
        own.push_str(&text[..shared.start]);
        own.push_str(&text[shared.end..]);
        (own.into_boxed_str(), Splice::new(id, shared.start))
    }

    /// One more user of `run`; its id, `None` when the ids are used up.
    fn acquire(&mut self, run: &str) -> Option<u32> {
        let hash = label_hash(run);
        let found = {
            let texts = &self.texts;
            self.by_text
                .find(hash, |&id| {
                    texts
                        .get(id as usize - 1)
                        .and_then(Option::as_ref)
                        .is_some_and(|t| t.hash == hash && &*t.text == run)
                })
                .copied()
        };
        if let Some(id) = found {
            if let Some(Some(t)) = self.texts.get_mut(id as usize - 1) {
                t.users += 1;
            }
            return Some(id);
        }
        let entry = SharedText {
            text: run.into(),
            hash,
            users: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                let slot = self.texts.get_mut(id as usize - 1)?;
                *slot = Some(entry);
                id
            }
            None if self.texts.len() < MAX_ID => {
                self.texts.push(Some(entry));
                self.texts.len() as u32
            }
            None => return None,
        };
        let texts = &self.texts;
        self.by_text.insert_unique(hash, id, |&id| {
            texts
                .get(id as usize - 1)
                .and_then(Option::as_ref)
                .map_or(0, |t| t.hash)
        });
        Some(id)
    }

    /// One user fewer of the run behind `splice`; dropped with the last.
    pub fn release(&mut self, splice: Splice) {
        let id = splice.id();
        if id == 0 {
            return;
        }
        let Some(slot) = self.texts.get_mut(id as usize - 1) else {
            return;
        };
        let Some(t) = slot else { return };
        t.users -= 1;
        if t.users > 0 {
            return;
        }
        let hash = t.hash;
        *slot = None;
        if let Ok(entry) = self.by_text.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        self.free.push(id);
    }

    /// A series' whole label block from its own text and splice.
    pub fn text<'a>(&'a self, own: &'a str, splice: Splice) -> LabelText<'a> {
        let shared = match splice.id() {
            0 => None,
            id => self
                .texts
                .get(id as usize - 1)
                .and_then(Option::as_ref)
                .map(|t| &*t.text),
        };
        match shared {
            Some(shared) if splice.offset() <= own.len() => LabelText {
                head: &own[..splice.offset()],
                shared,
                tail: &own[splice.offset()..],
            },
            _ => LabelText {
                head: own,
                shared: "",
                tail: "",
            },
        }
    }

    /// Distinct shared runs held.
    pub fn len(&self) -> usize {
        self.texts.len() - self.free.len()
    }
}

/// A series' label block (`a="1",b="2"`, escaped, no braces) as three
/// consecutive parts: its own text before the shared run, the run, and
/// its own text after.
#[derive(Debug, Clone, Copy)]
pub struct LabelText<'a> {
    head: &'a str,
    shared: &'a str,
    tail: &'a str,
}

impl<'a> LabelText<'a> {
    /// A block held in three consecutive parts.
    pub fn parts(head: &'a str, shared: &'a str, tail: &'a str) -> Self {
        Self { head, shared, tail }
    }

    /// A block held in one piece.
    pub fn whole(text: &'a str) -> Self {
        Self {
            head: text,
            shared: "",
            tail: "",
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.shared.is_empty() && self.tail.is_empty()
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.shared.len() + self.tail.len()
    }

    pub fn push_to(&self, out: &mut String) {
        out.push_str(self.head);
        out.push_str(self.shared);
        out.push_str(self.tail);
    }

    /// Whether the block is `text`, compared part by part.
    pub fn is(&self, text: &str) -> bool {
        let (h, s) = (self.head.len(), self.head.len() + self.shared.len());
        text.len() == self.len()
            && text.as_bytes()[..h] == *self.head.as_bytes()
            && text.as_bytes()[h..s] == *self.shared.as_bytes()
            && text.as_bytes()[s..] == *self.tail.as_bytes()
    }
}

impl fmt::Display for LabelText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.head)?;
        f.write_str(self.shared)?;
        f.write_str(self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_blocks_read_back_whole_and_runs_are_counted() {
        let mut shared = SharedLabels::default();
        let a = r#"a="1",instance="i-1",job="svc",z="9""#;
        let b = r#"a="2",instance="i-1",job="svc""#;
        let run = 6..a.find(",z").unwrap();
        let (own_a, sa) = shared.split(a, run.clone());
        let (own_b, sb) = shared.split(b, 6..b.len());
        assert_eq!(&*own_a, r#"a="1",,z="9""#);
        assert_eq!(&*own_b, r#"a="2","#);
        assert_eq!(sa.id(), sb.id(), "one run for both");
        assert_eq!(shared.len(), 1);
        let text_a = shared.text(&own_a, sa);
        assert_eq!(text_a.to_string(), a);
        assert!(text_a.is(a));
        assert!(!text_a.is(b));
        assert!(!text_a.is(&a.replace("svc", "sve")));
        assert_eq!(shared.text(&own_b, sb).to_string(), b);
        let mut out = String::new();
        text_a.push_to(&mut out);
        assert_eq!(out, a);

        shared.release(sa);
        assert_eq!(shared.len(), 1, "b still uses it");
        shared.release(sb);
        assert_eq!(shared.len(), 0);
        // The freed id is reused for a new run.
        let (_, sc) = shared.split(r#"job="other-service""#, 0..19);
        assert_eq!(sc.id(), sa.id());
        assert_eq!(shared.len(), 1);
    }

    #[test]
    fn empty_or_far_runs_keep_the_block_whole() {
        let mut shared = SharedLabels::default();
        let (own, s) = shared.split(r#"a="1""#, 0..0);
        assert_eq!((&*own, s), (r#"a="1""#, Splice::NONE));
        let long = format!(r#"a="{}",job="svc""#, "x".repeat(5000));
        let start = long.find("job").unwrap();
        let (own, s) = shared.split(&long, start..long.len());
        assert_eq!((&*own, s), (long.as_str(), Splice::NONE));
        assert_eq!(shared.text(&own, s).to_string(), long);
        assert_eq!(shared.len(), 0);
    }
}
