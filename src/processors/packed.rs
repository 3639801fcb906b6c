//! Compact storage of what a long-lived per-series state says about its
//! series: its attribute list packed into one allocation, or for analysed
//! series its label block on `/metrics` with the attributes read back
//! from it ([`SeriesText`]), and the resource, scope and attribute key
//! lists it shares with every other series of the same source.
//!
//! An owned `Vec<KeyValue>` costs 56 bytes per attribute plus two
//! allocations for its key and value; the same list as its protobuf
//! encoding is the attributes' bytes and about four more each, in one
//! boxed slice. It is unpacked when the series' outputs are built (once
//! per evaluation step), so the saving is paid for off the ingest path.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use prost::Message;

use crate::model::label_block::parse_borrowed;
use crate::model::otlp::common::any_value::Value;
use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue};
use crate::processors::identity::{ByIdentity, ScopeSource};

/// An attribute list as its protobuf encoding (each `KeyValue`
/// length-delimited, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedAttributes(Box<[u8]>);

impl PackedAttributes {
    /// Packs `attributes`, keeping their order.
    pub fn pack(attributes: &[KeyValue]) -> Self {
        let len: usize = attributes
            .iter()
            .map(|kv| {
                let n = kv.encoded_len();
                n + prost::length_delimiter_len(n)
            })
            .sum();
        let mut bytes = Vec::with_capacity(len);
        pack_into(attributes, &mut bytes);
        Self(bytes.into_boxed_slice())
    }

    /// The attributes, in the order they were packed.
    pub fn unpack(&self) -> Vec<KeyValue> {
        unpack(&self.0)
    }
}

/// The bytes of `attributes` packed: each `KeyValue` length-delimited.
fn pack_into(attributes: &[KeyValue], bytes: &mut Vec<u8>) {
    for kv in attributes {
        // Writing into a Vec grows it as needed: this cannot fail.
        let _ = kv.encode_length_delimited(bytes);
    }
}

/// The attributes packed in `bytes`, in order.
fn unpack(mut rest: &[u8]) -> Vec<KeyValue> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        // Only `pack_into` wrote these bytes: a decode error cannot
        // happen, and would end the list rather than panic.
        match KeyValue::decode_length_delimited(&mut rest) {
            Ok(kv) => out.push(kv),
            Err(_) => break,
        }
    }
    out
}

/// A series' label block on `/metrics` and what its attributes are, in one
/// allocation, in one of two forms (the first byte says which):
///
/// - **mapped** (most series): the attributes are read back from the
///   block itself, each label's value under the attribute key its
///   origin's [`LabelKeys`] list gives for it. A 5-byte header (the form,
///   the list's index in the origin and where the block's shared run was
///   left out, as `u16` little-endian), then the block's own text.
/// - **packed**: the attributes kept as their protobuf encoding, for a
///   series whose attributes cannot be read back from its labels (two
///   keys on one label, a value the block leaves out or writes otherwise,
///   an origin with too many key lists). A 9-byte header (the form, the
///   packed attributes' length and the split, as `u32`), the packed
///   attributes, then the block's own text.
///
/// - **valued** (most mapped series once their origin has one): as the
///   mapped form, but the own labels' names are their origin's
///   [`OwnNames`], so only their values are kept. A 4-byte header (the
///   form, the key list's index as `u16` little-endian, the number of
///   values), each value's length in one byte, then the values one after
///   the other as the block writes them (escaped).
///
/// The own text is all of the block, or the text before and after the
/// shared run, which the series' [`Origin`] keeps once for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesText(Box<[u8]>);

const FORM_PACKED: u8 = 0;
const FORM_MAPPED: u8 = 1;
const FORM_VALUED: u8 = 2;
/// Header bytes of each form.
const PACKED_HEADER: usize = 9;
const MAPPED_HEADER: usize = 5;
const VALUED_HEADER: usize = 4;
/// The split position of a label block kept whole, in each form.
const WHOLE: u32 = u32::MAX;
const WHOLE_MAPPED: u16 = u16::MAX;

/// The own text of `labels` with the `shared` run left out (when it is
/// given and on char boundaries), as the text before and after it, and
/// where it was.
fn own_text(labels: &str, shared: Option<Range<usize>>) -> ([&[u8]; 2], Option<usize>) {
    let bytes = labels.as_bytes();
    match shared.filter(|r| labels.get(r.clone()).is_some()) {
        Some(r) => ([&bytes[..r.start], &bytes[r.end..]], Some(r.start)),
        None => ([bytes, &[]], None),
    }
}

impl SeriesText {
    /// The packed form: `labels` is the whole block; `shared` the run to
    /// leave out (the caller keeps it), or `None` to keep the block whole.
    pub fn new(attributes: &[KeyValue], labels: &str, shared: Option<Range<usize>>) -> Self {
        let mut bytes = vec![0; PACKED_HEADER];
        bytes[0] = FORM_PACKED;
        pack_into(attributes, &mut bytes);
        let packed = (bytes.len() - PACKED_HEADER) as u32;
        bytes[1..5].copy_from_slice(&packed.to_le_bytes());
        let (parts, split) = own_text(labels, shared);
        for part in parts {
            bytes.extend_from_slice(part);
        }
        let split = split.map_or(WHOLE, |at| at as u32);
        bytes[5..9].copy_from_slice(&split.to_le_bytes());
        Self(bytes.into_boxed_slice())
    }

    /// The mapped form, its attributes read back from `labels` with the
    /// origin's key list `keys` (see [`Source::learn_label_keys`]);
    /// `None` when the own text is too long for its header (64 KiB).
    pub fn mapped(keys: u16, labels: &str, shared: Option<Range<usize>>) -> Option<Self> {
        Self::mapped_with(keys, labels, shared, None)
    }

    /// The valued form when the own labels' names are `names` (the
    /// origin's; set to this series' names when the origin has none yet),
    /// else the mapped form (see [`mapped`](Self::mapped)).
    pub fn mapped_or_valued(
        keys: u16,
        labels: &str,
        shared: Option<Range<usize>>,
        names: &OnceLock<OwnNames>,
    ) -> Option<Self> {
        Self::mapped_with(keys, labels, shared, Some(names))
    }

    fn mapped_with(
        keys: u16,
        labels: &str,
        shared: Option<Range<usize>>,
        names: Option<&OnceLock<OwnNames>>,
    ) -> Option<Self> {
        let (parts, split) = own_text(labels, shared);
        if let Some(valued) = names.and_then(|names| Self::valued(keys, parts, split, names)) {
            return Some(valued);
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let split = match split {
            Some(at) => u16::try_from(at).ok().filter(|at| *at != WHOLE_MAPPED)?,
            None => WHOLE_MAPPED,
        };
        if len >= usize::from(u16::MAX) {
            return None;
        }
        let mut bytes = Vec::with_capacity(MAPPED_HEADER + len);
        bytes.push(FORM_MAPPED);
        bytes.extend_from_slice(&keys.to_le_bytes());
        bytes.extend_from_slice(&split.to_le_bytes());
        for part in parts {
            bytes.extend_from_slice(part);
        }
        Some(Self(bytes.into_boxed_slice()))
    }

    /// The valued form of the own text `parts` (split where the shared
    /// run was left out), when its labels are named as the origin's
    /// `names` say (which this series sets if none are yet), each value
    /// fits its length byte, and the text comes back exactly from them.
    fn valued(
        keys: u16,
        parts: [&[u8]; 2],
        split: Option<usize>,
        names: &OnceLock<OwnNames>,
    ) -> Option<Self> {
        let (labels, own) = OwnNames::of(parts, split)?;
        let names = names.get_or_init(|| own.clone());
        if *names != own {
            return None;
        }
        let mut bytes = Vec::with_capacity(
            VALUED_HEADER + labels.iter().map(|(_, v)| 1 + v.len()).sum::<usize>(),
        );
        bytes.push(FORM_VALUED);
        bytes.extend_from_slice(&keys.to_le_bytes());
        bytes.push(u8::try_from(labels.len()).ok()?);
        for (_, value) in &labels {
            bytes.push(u8::try_from(value.len()).ok()?);
        }
        for (_, value) in &labels {
            bytes.extend_from_slice(value.as_bytes());
        }
        let text = Self(bytes.into_boxed_slice());
        // What a render writes must be the block's own text, to the byte.
        let mut scratch = String::new();
        let (head, tail, _) = text.valued_parts(names, &mut scratch);
        (head.as_bytes() == parts[0] && tail.as_bytes() == parts[1]).then_some(text)
    }

    fn valued_form(&self) -> bool {
        self.0.first() == Some(&FORM_VALUED)
    }

    /// The values of a valued text, in order. After the header: their
    /// count, each one's length, then the values one after the other.
    fn values(&self) -> impl Iterator<Item = &str> {
        let count = usize::from(self.0.get(VALUED_HEADER - 1).copied().unwrap_or(0));
        let lengths = self
            .0
            .get(VALUED_HEADER..VALUED_HEADER + count)
            .unwrap_or_default();
        let bytes = self.0.get(VALUED_HEADER + count..).unwrap_or_default();
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `valued`, the only writer of this form, wrote the values
        // after the lengths as whole `&str`s one after the other (each cut
        // from a label block between two ASCII quotes), so together they
        // are UTF-8; the bytes are never changed after. Read for every
        // derived family of every series on each scrape, so not validated
        // again each time (`get` below still checks each cut).
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        let mut at = 0;
        lengths.iter().map_while(move |&len| {
            let value = text.get(at..at + usize::from(len))?;
            at += usize::from(len);
            Some(value)
        })
    }

    /// A valued text's own text, written into `scratch` from `names` and
    /// the values: the part before the shared run and the part after, as
    /// [`label_parts`](Self::label_parts) gives them.
    fn valued_parts<'a>(
        &self,
        names: &OwnNames,
        scratch: &'a mut String,
    ) -> (&'a str, &'a str, bool) {
        scratch.clear();
        let labels = names.before.len();
        let run = names.before_run.map(usize::from);
        let mut head_end = None;
        for (i, (before, value)) in names.before.iter().zip(self.values()).enumerate() {
            if run == Some(i) {
                // The head ends with its last label's quote and a comma.
                if i > 0 {
                    scratch.push_str("\",");
                }
                head_end = Some(scratch.len());
            }
            scratch.push_str(before);
            scratch.push_str(value);
        }
        let closes = labels > 0 && run != Some(labels);
        if closes {
            scratch.push('"');
        }
        let Some(run) = run else {
            return (scratch.as_str(), "", false);
        };
        let head_end = match head_end {
            Some(at) => at,
            // The run after every label: the head is all of them.
            None if run > 0 => {
                scratch.push_str("\",");
                scratch.len()
            }
            None => scratch.len(),
        };
        let (head, tail) = scratch.split_at(head_end);
        (head, tail, true)
    }

    fn word(&self, at: usize) -> u32 {
        self.0
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    fn half(&self, at: usize) -> u16 {
        self.0
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u16::from_le_bytes)
    }

    fn mapped_form(&self) -> bool {
        self.0.first() == Some(&FORM_MAPPED)
    }

    /// Where the label text (a valued text's values) starts.
    fn text_start(&self) -> usize {
        let start = match self.0.first() {
            Some(&FORM_MAPPED) => MAPPED_HEADER,
            Some(&FORM_VALUED) => VALUED_HEADER,
            _ => PACKED_HEADER + self.word(1) as usize,
        };
        start.min(self.0.len())
    }

    /// Where the shared run goes in the own text, if it was left out.
    fn split(&self) -> Option<usize> {
        if self.mapped_form() {
            Some(self.half(3))
                .filter(|at| *at != WHOLE_MAPPED)
                .map(usize::from)
        } else {
            Some(self.word(5))
                .filter(|at| *at != WHOLE)
                .map(|at| at as usize)
        }
    }

    /// Asks the CPU for the label text ahead of [`label_parts`]
    /// (see [`prefetch`](crate::model::prefetch::prefetch)).
    ///
    /// [`label_parts`]: Self::label_parts
    pub fn prefetch_labels(&self) {
        if let Some(text) = self.0.get(self.text_start()..) {
            crate::model::prefetch::prefetch(text, 256);
        }
    }

    /// The attributes as `(key, value as text)` pairs: in the order they
    /// were given for the packed form, in label order for the mapped one
    /// (read with `origin`, the series' own).
    pub fn attribute_texts(&self, origin: &Origin) -> Vec<(String, String)> {
        if !self.mapped_form() && !self.valued_form() {
            return unpack(
                self.0
                    .get(PACKED_HEADER..self.text_start())
                    .unwrap_or_default(),
            )
            .into_iter()
            .map(|kv| (kv.key, any_text(kv.value.as_ref())))
            .collect();
        }
        let mut scratch = String::new();
        let (head, tail, split) = self.label_parts(origin, &mut scratch);
        let shared = match origin.label_run.get() {
            Some(run) if split => &**run,
            _ => "",
        };
        let block = [head, shared, tail].concat();
        let labels = parse_borrowed(&block);
        let lists = origin.label_keys.lock();
        let Some(keys) = lists.lists.get(usize::from(self.half(1))) else {
            return Vec::new();
        };
        read_back(&labels, keys)
    }

    /// The label block's own text: before the run and after it, and
    /// whether the run was left out (the text is all in the first part
    /// when it was not). A valued text writes it into `scratch` from its
    /// values and the names of `origin`, the series' own; the others are
    /// read in place.
    pub fn label_parts<'a>(
        &'a self,
        origin: &Origin,
        scratch: &'a mut String,
    ) -> (&'a str, &'a str, bool) {
        if self.valued_form() {
            return match origin.own_names.get() {
                Some(names) => self.valued_parts(names, scratch),
                // A valued text is only made once its origin has names.
                None => ("", "", false),
            };
        }
        self.stored_parts()
    }

    /// [`label_parts`](Self::label_parts) of the packed and mapped forms.
    fn stored_parts(&self) -> (&str, &str, bool) {
        let bytes = self.0.get(self.text_start()..).unwrap_or_default();
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `new` and `mapped`, the only constructors (`Default`
        // is empty), wrote the label text after the header (and packed
        // attributes) as whole `&str` pieces, split on a char boundary
        // (a range `get` accepted), and `text_start` is where they wrote
        // them; the bytes are never changed after. Read on every scrape
        // for every derived gauge, so not validated again each time.
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        match self.split() {
            None => (text, "", false),
            Some(at) => {
                let at = at.min(text.len());
                match (text.get(..at), text.get(at..)) {
                    (Some(head), Some(tail)) => (head, tail, true),
                    _ => (text, "", false),
                }
            }
        }
    }
}

/// An attribute value as text, as the console and findings show it.
pub fn any_text(value: Option<&AnyValue>) -> String {
    let mut text = String::new();
    crate::model::text::write_any_value(value, &mut text);
    text
}

/// For each label of a block, in order, the attribute key whose value it
/// carries, or `None` for a label of the resource or scope: how a mapped
/// [`SeriesText`] reads its attributes back. The same for every series of
/// a metric with the same attribute keys, so a [`Source`] keeps each
/// once.
pub type LabelKeys = Box<[Option<Box<str>>]>;

/// The names of the labels in the own text of an origin's series (the
/// block less the shared run), in order, and how many come before the
/// run (`None`: the run was not left out). Set by the origin's first
/// mapped series; every later one whose own labels are named the same
/// keeps only their values (the valued form of [`SeriesText`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnNames {
    /// For each label, the text a render writes before its value: the
    /// previous label's closing quote and comma where there is one (not
    /// across the run), then `name="`.
    before: Box<[Box<str>]>,
    /// How many labels come before the run (`None`: it was not left out).
    before_run: Option<u16>,
}

impl OwnNames {
    /// The labels of the own text `parts` (split where the shared run
    /// was left out, see [`own_text`]) as `(name, escaped value)`, and
    /// their names; `None` when the text is not a list of `name="value"`
    /// labels in the punctuation a render gives back.
    fn of(parts: [&[u8]; 2], split: Option<usize>) -> Option<(Vec<(&str, &str)>, OwnNames)> {
        let [head, tail] = parts.map(std::str::from_utf8);
        let (head, tail) = (head.ok()?, tail.ok()?);
        let (labels, before_run) = match split {
            None => (raw_labels(head)?, None),
            Some(_) => {
                let head = match head {
                    "" => Vec::new(),
                    head => raw_labels(head.strip_suffix(',')?)?,
                };
                let tail = match tail {
                    "" => Vec::new(),
                    tail => raw_labels(tail.strip_prefix(',')?)?,
                };
                let before = u16::try_from(head.len()).ok()?;
                ([head, tail].concat(), Some(before))
            }
        };
        let run = before_run.map(usize::from);
        let before = labels
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let lead = match run {
                    // The first label after the run follows its comma.
                    Some(k) if i == k => ",",
                    _ if i > 0 => "\",",
                    _ => "",
                };
                format!("{lead}{name}=\"").into_boxed_str()
            })
            .collect();
        Some((labels, OwnNames { before, before_run }))
    }
}

/// The labels of `text`, a label block's `name="value",…` as the
/// translation writes it, as `(name, value)` with each value still
/// escaped; `None` when it is not such a list.
fn raw_labels(text: &str) -> Option<Vec<(&str, &str)>> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let label_name =
            |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !label_name(name) {
            return None;
        }
        let bytes = after.as_bytes();
        let mut end = 0;
        loop {
            match bytes.get(end)? {
                b'\\' => end += 2,
                b'"' => break,
                _ => end += 1,
            }
        }
        let value = after.get(..end)?;
        labels.push((name, value));
        rest = match after.get(end + 1..)? {
            "" => "",
            more => more.strip_prefix(',').filter(|m| !m.is_empty())?,
        };
    }
    Some(labels)
}

/// Key lists an origin keeps at most; a series past them is packed.
const MAX_LABEL_KEYS: usize = 256;
/// Shapes of attributes an origin remembers a key list for at most.
const MAX_SHAPES: usize = 4 * MAX_LABEL_KEYS;

/// A parsed label block (see [`parse_borrowed`]).
type Parsed<'a> = [(&'a str, Cow<'a, str>)];

/// The `(key, value)` attributes `labels` (a parsed block) carry under
/// `keys`.
fn read_back(labels: &Parsed<'_>, keys: &[Option<Box<str>>]) -> Vec<(String, String)> {
    labels
        .iter()
        .zip(keys)
        .filter_map(|((_, value), key)| Some((key.as_deref()?.to_string(), value.to_string())))
        .collect()
}

/// What a marker value starts with: a private-use character no
/// translation escapes (the attribute's index follows).
const MARKER: char = '\u{f8ff}';

/// A value standing for attribute `i` in a block translated to learn
/// which label each attribute becomes.
fn key_marker(i: usize) -> String {
    format!("{MARKER}{i}")
}

/// `attributes` with each value replaced by its [`key_marker`]: what to
/// translate for [`label_keys`]'s `marked` block.
pub fn marked_attributes(attributes: &[KeyValue]) -> Vec<KeyValue> {
    attributes
        .iter()
        .enumerate()
        .map(|(i, kv)| KeyValue {
            key: kv.key.clone(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(key_marker(i))),
            }),
            ..Default::default()
        })
        .collect()
}

/// Whether attribute `kv`'s value, as text, is `text` (`scratch` holds
/// the text of a value that is not a string).
fn value_reads(kv: &KeyValue, text: &str, scratch: &mut String) -> bool {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s == text,
        _ => {
            scratch.clear();
            crate::model::text::write_any_value(kv.value.as_ref(), scratch);
            scratch == text
        }
    }
}

/// Whether `keys` read the parsed block `labels` back to `attributes`
/// exactly: each attribute's text is the value of one label carrying
/// its key, and every such label is one attribute's.
fn reads_back(labels: &Parsed<'_>, keys: &[Option<Box<str>>], attributes: &[KeyValue]) -> bool {
    if labels.len() != keys.len() {
        return false;
    }
    let mut used = vec![false; attributes.len()];
    let mut text = String::new();
    let carried = labels
        .iter()
        .zip(keys)
        .filter_map(|((_, value), key)| Some((key.as_deref()?, value)));
    for (key, value) in carried {
        let found = attributes
            .iter()
            .enumerate()
            .position(|(i, kv)| !used[i] && kv.key == key && value_reads(kv, value, &mut text));
        match found {
            Some(i) => used[i] = true,
            None => return false,
        }
    }
    used.iter().all(|u| *u)
}

/// The key list of a series whose parsed block is `labels` and whose
/// attributes are `attributes`, from `marked`: the block of the same
/// resource, scope and attribute keys with each attribute's value replaced
/// by its [`key_marker`]. `None` when the attributes cannot be read back
/// from `labels` exactly: then the series keeps them packed.
pub fn label_keys(labels: &Parsed<'_>, marked: &str, attributes: &[KeyValue]) -> Option<LabelKeys> {
    let marked = parse_borrowed(marked);
    let keys: LabelKeys = labels
        .iter()
        .map(|(name, _)| {
            let (_, value) = marked.iter().find(|(n, _)| n == name)?;
            let i: usize = value.strip_prefix(MARKER)?.parse().ok()?;
            attributes.get(i).map(|kv| kv.key.as_str().into())
        })
        .collect();
    reads_back(labels, &keys, attributes).then_some(keys)
}

/// The shape of an attribute list: a hash of its keys in order. Series of
/// one shape almost always share a key list.
pub fn key_shape(attributes: &[KeyValue]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    for kv in attributes {
        h.write(kv.key.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// An origin's key lists, each kept once, and the one learnt last for
/// each shape of attributes.
#[derive(Debug, Default)]
pub struct KeyLists {
    lists: Vec<LabelKeys>,
    by_shape: Vec<(u64, u16)>,
}

/// The identifying resource attributes and the scope of a source, as its
/// derived series go out under them, and the attribute key lists of its
/// mapped series: kept once per source.
#[derive(Debug)]
pub struct Source {
    pub resource: Vec<KeyValue>,
    pub scope: InstrumentationScope,
    /// The key lists of this source's mapped series ([`SeriesText`]).
    pub label_keys: Mutex<KeyLists>,
}

/// What the series of one source with the same labels of the processor's
/// own (`metric`, and `transform` or `ratio` where it adds them) share:
/// the [`Source`] (read through this as if it were one) and the run of
/// labels their blocks have in common.
#[derive(Debug)]
pub struct Origin {
    pub source: Arc<Source>,
    /// The run of labels the exporter's translation gives every series
    /// of the origin, as its first series got it: the labels it derives
    /// from the resource and scope (`job`, `instance`, `otel_scope_*`)
    /// and, where they sort next to them, the processor's own labels
    /// (`metric`). Its series whose label block has the same run leave it
    /// out of their own text ([`SeriesText`]).
    pub label_run: OnceLock<Box<str>>,
    /// The threshold levels that apply to every series of the origin
    /// (they depend on its metric's name alone), set by its first series.
    pub thresholds: OnceLock<Box<[f64]>>,
    /// The names of its series' own labels, set by its first mapped
    /// series: those named the same keep only their values.
    pub own_names: OnceLock<OwnNames>,
}

impl std::ops::Deref for Origin {
    type Target = Source;

    fn deref(&self) -> &Source {
        &self.source
    }
}

impl Source {
    /// The key list learnt for attributes of `shape` (see [`key_shape`]),
    /// if it reads the parsed block `labels` back to `attributes`: a new
    /// series of a known shape needs no translation to learn it.
    pub fn known_label_keys(
        &self,
        shape: u64,
        labels: &Parsed<'_>,
        attributes: &[KeyValue],
    ) -> Option<u16> {
        let lists = self.label_keys.lock();
        let &(_, at) = lists.by_shape.iter().find(|(s, _)| *s == shape)?;
        let keys = lists.lists.get(usize::from(at))?;
        reads_back(labels, keys, attributes).then_some(at)
    }

    /// The index of `keys` in this origin's key lists, added when new,
    /// and remembered for `shape`; `None` when the origin has as many as
    /// it keeps.
    pub fn learn_label_keys(&self, shape: u64, keys: LabelKeys) -> Option<u16> {
        let mut lists = self.label_keys.lock();
        let at = match lists.lists.iter().position(|k| *k == keys) {
            Some(at) => at,
            None if lists.lists.len() < MAX_LABEL_KEYS => {
                lists.lists.push(keys);
                lists.lists.len() - 1
            }
            None => return None,
        };
        let at = u16::try_from(at).ok()?;
        let shapes = &mut lists.by_shape;
        match shapes.iter().position(|(s, _)| *s == shape) {
            Some(known) => shapes[known].1 = at,
            // Shapes past the bound (keys in many orders) are translated
            // again for each new series, never kept without end.
            None if shapes.len() < MAX_SHAPES => shapes.push((shape, at)),
            None => {}
        }
        Some(at)
    }
}

/// One [`Source`] per source identity and one [`Origin`] per source and
/// set of the processor's own labels, shared by their series: a source's
/// resource and scope are kept once however many of its series are
/// analysed, and the run of labels once per metric of it.
#[derive(Debug, Default)]
pub struct Origins {
    sources: ByIdentity<Arc<Source>>,
    origins: ByIdentity<Arc<Origin>>,
}

impl Origins {
    /// The shared origin of `source`'s series whose own labels hash to
    /// `own` (see [`own_labels_hash`]), made on first sight.
    pub fn of(&mut self, source: &ScopeSource<'_, '_>, own: u64) -> Arc<Origin> {
        let key = crate::processors::identity::with_attributes(source.identity, "", own);
        let sources = &mut self.sources;
        self.origins
            .entry(key)
            .or_insert_with(|| {
                let shared = sources
                    .entry(source.identity)
                    .or_insert_with(|| {
                        Arc::new(Source {
                            resource: source.identifying_resource(),
                            scope: source.owned_scope(),
                            label_keys: Mutex::default(),
                        })
                    })
                    .clone();
                Arc::new(Origin {
                    source: shared,
                    label_run: OnceLock::new(),
                    thresholds: OnceLock::new(),
                    own_names: OnceLock::new(),
                })
            })
            .clone()
    }

    /// Forgets the origins, then the sources, no series holds any more.
    pub fn release_unused(&mut self) {
        self.origins
            .retain(|_, origin| Arc::strong_count(origin) > 1);
        self.sources
            .retain(|_, source| Arc::strong_count(source) > 1);
    }

    /// Sources known.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Origins known (sources times their sets of own labels).
    pub fn origins(&self) -> usize {
        self.origins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// A hash of the labels the processor adds to a series' attributes
/// (`metric`, `transform`, `ratio`), which picks its [`Origin`].
pub fn own_labels_hash(own: &[KeyValue]) -> u64 {
    own.iter()
        .map(|kv| {
            crate::processors::identity::attribute_hash(&kv.key, &any_text(kv.value.as_ref()))
        })
        .fold(0u64, u64::wrapping_add)
}

/// The longest run of consecutive labels of the block `common` that
/// `labels` has in one piece: where the series' labels and every other
/// series' of its origin meet (an attribute's label may sort between
/// two of the common ones).
pub fn longest_common_run(labels: &str, common: &str) -> Option<Range<usize>> {
    let spans = crate::model::label_block::label_spans(common);
    let mut best: Option<Range<usize>> = None;
    for (i, first) in spans.iter().enumerate() {
        // Longest first: the first found from `first` is its longest.
        for last in spans[i..].iter().rev() {
            let Some(found) = run_in(labels, &common[first.start..last.end]) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| found.len() > b.len()) {
                best = Some(found);
            }
            break;
        }
    }
    best
}

/// Where `run` occurs in `labels`: the range a series leaves to its
/// origin (the parts around it and the run put back together are the
/// block, wherever it was found).
pub fn run_in(labels: &str, run: &str) -> Option<Range<usize>> {
    if run.is_empty() {
        return None;
    }
    labels.find(run).map(|at| at..at + run.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::InstrumentationScope;
    use crate::model::otlp::common::{AnyValue, ArrayValue, any_value::Value};
    use crate::model::otlp::kv;

    /// A text's own label parts, as a render gets them, owned.
    fn parts(text: &SeriesText, origin: &Origin) -> (String, String, bool) {
        let mut scratch = String::new();
        let (head, tail, split) = text.label_parts(origin, &mut scratch);
        (head.to_string(), tail.to_string(), split)
    }

    /// `(head, tail, split)` owned, to compare with [`parts`].
    fn own(head: &str, tail: &str, split: bool) -> (String, String, bool) {
        (head.to_string(), tail.to_string(), split)
    }

    fn origin() -> Origin {
        Origin {
            source: Arc::new(Source {
                resource: Vec::new(),
                scope: InstrumentationScope::default(),
                label_keys: Mutex::default(),
            }),
            label_run: OnceLock::new(),
            thresholds: OnceLock::new(),
            own_names: OnceLock::new(),
        }
    }

    fn texts(attributes: &[KeyValue]) -> Vec<(String, String)> {
        attributes
            .iter()
            .map(|kv| (kv.key.clone(), any_text(kv.value.as_ref())))
            .collect()
    }

    #[test]
    fn series_text_keeps_attributes_and_labels_apart() {
        let attributes = vec![
            kv("route", Value::StringValue("/a".into())),
            kv("code", Value::IntValue(503)),
        ];
        let origin = origin();
        let labels = r#"code="503",job="api",route="/a""#;
        let text = SeriesText::new(&attributes, labels, None);
        assert_eq!(text.attribute_texts(&origin), texts(&attributes));
        assert_eq!(parts(&text, &origin), own(labels, "", false));
        // The run `job="api"` left out: the text around it is kept.
        let run = labels.find("job").unwrap()..labels.find(",route").unwrap();
        let split = SeriesText::new(&attributes, labels, Some(run));
        assert_eq!(split.attribute_texts(&origin), texts(&attributes));
        assert_eq!(
            parts(&split, &origin),
            own(r#"code="503","#, r#",route="/a""#, true)
        );
        let none = SeriesText::new(&[], "", None);
        assert!(none.attribute_texts(&origin).is_empty());
        assert_eq!(parts(&none, &origin), own("", "", false));
        let no_labels = SeriesText::new(&attributes, "", Some(0..0));
        assert_eq!(no_labels.attribute_texts(&origin), texts(&attributes));
        assert_eq!(parts(&no_labels, &origin), own("", "", true));
    }

    /// A mapped series keeps only its label text, reads its attributes
    /// back under their own keys (values escaped in the block included),
    /// and shares its key list with the origin's other series.
    #[test]
    fn a_mapped_series_reads_its_attributes_back_from_its_labels() {
        let attributes = vec![
            kv("http.route", Value::StringValue("/a \"b\"\n".into())),
            kv("http.status_code", Value::IntValue(503)),
            kv("metric", Value::StringValue("queue_depth".into())),
        ];
        let labels = r#"http_route="/a \"b\"\n",http_status_code="503",job="api",metric="queue_depth",otel_scope_name="s""#;
        let marked = format!(
            r#"http_route="{}",http_status_code="{}",job="api",metric="{}",otel_scope_name="s""#,
            key_marker(0),
            key_marker(1),
            key_marker(2)
        );
        let parsed = parse_borrowed(labels);
        let keys = label_keys(&parsed, &marked, &attributes).expect("read back exactly");
        assert_eq!(
            keys.iter().filter(|k| k.is_none()).count(),
            2,
            "job and scope"
        );
        let origin = origin();
        let shape = key_shape(&attributes);
        assert_eq!(origin.known_label_keys(shape, &parsed, &attributes), None);
        let index = origin.learn_label_keys(shape, keys.clone()).unwrap();
        assert_eq!(
            origin.learn_label_keys(shape, keys).unwrap(),
            index,
            "kept once"
        );
        assert_eq!(
            origin.known_label_keys(shape, &parsed, &attributes),
            Some(index),
            "known for the shape"
        );
        // Another series of the shape whose block reads back otherwise
        // (its status label left out) is not given the list.
        let other = r#"http_route="/b",job="api",metric="queue_depth",otel_scope_name="s""#;
        let other = parse_borrowed(other);
        assert_eq!(origin.known_label_keys(shape, &other, &attributes), None);

        let mut expected = texts(&attributes);
        expected.sort();
        let read = |text: &SeriesText| {
            let mut read = text.attribute_texts(&origin);
            read.sort();
            read
        };
        let whole = SeriesText::mapped(index, labels, None).unwrap();
        assert_eq!(parts(&whole, &origin), own(labels, "", false));
        assert_eq!(read(&whole), expected);
        // Smaller than the packed form by the packed attributes.
        let packed = SeriesText::new(&attributes, labels, None);
        assert_eq!(
            whole.0.len() + 4 + PackedAttributes::pack(&attributes).0.len(),
            packed.0.len()
        );

        // The scope's run left out, kept by the origin.
        let at = labels.find("otel_scope_name").unwrap();
        origin.label_run.set(labels[at..].into()).unwrap();
        let split = SeriesText::mapped(index, labels, Some(at..labels.len())).unwrap();
        assert_eq!(parts(&split, &origin), own(&labels[..at], "", true));
        assert_eq!(read(&split), expected);
    }

    /// Series whose own labels are named as their origin's first keep
    /// only their values, and give back their label text and attributes
    /// exactly as the mapped form does, with the run left out or not;
    /// a series named otherwise stays mapped.
    #[test]
    fn a_valued_series_keeps_only_its_values() {
        let attributes = |route: &str, code: i64| {
            vec![
                kv("http.route", Value::StringValue(route.into())),
                kv("http.status_code", Value::IntValue(code)),
                kv("metric", Value::StringValue("queue_depth".into())),
            ]
        };
        let block = |route: &str, code: i64| {
            format!(
                r#"a="k",http_route="{route}",http_status_code="{code}",job="api",metric="queue_depth",otel_scope_name="s""#
            )
        };
        let first = attributes("/a", 200);
        let labels = block("/a", 200);
        let marked = format!(
            r#"a="k",http_route="{}",http_status_code="{}",job="api",metric="{}",otel_scope_name="s""#,
            key_marker(0),
            key_marker(1),
            key_marker(2)
        );
        let keys = label_keys(&parse_borrowed(&labels), &marked, &first).expect("read back");
        // The run left out: none; the first label; one between two own
        // labels; the last one.
        for run in [
            None,
            Some(r#"a="k""#),
            Some(r#"job="api""#),
            Some(r#"otel_scope_name="s""#),
        ] {
            let origin = origin();
            let index = origin
                .learn_label_keys(key_shape(&first), keys.clone())
                .unwrap();
            let shared = |labels: &str| {
                run.map(|run| {
                    let at = labels.find(run).unwrap();
                    at..at + run.len()
                })
            };
            if let Some(run) = run {
                origin.label_run.set(run.into()).unwrap();
            }
            let joined = |text: &SeriesText| {
                let (head, tail, split) = parts(text, &origin);
                assert_eq!(split, run.is_some());
                format!("{head}{}{tail}", run.unwrap_or_default())
            };
            // An escaped quote, backslash and newline, and UTF-8.
            for (route, code) in [("/a", 200), (r#"/b \"q\" \\ \n é"#, 503), ("", 7)] {
                let labels = block(route, code);
                let shared = shared(&labels);
                let valued =
                    SeriesText::mapped_or_valued(index, &labels, shared.clone(), &origin.own_names)
                        .unwrap();
                let mapped = SeriesText::mapped(index, &labels, shared).unwrap();
                assert!(valued.valued_form() && mapped.mapped_form());
                assert_eq!(parts(&valued, &origin), parts(&mapped, &origin), "{labels}");
                assert_eq!(joined(&valued), labels);
                assert_eq!(
                    valued.attribute_texts(&origin),
                    mapped.attribute_texts(&origin)
                );
                assert!(valued.0.len() + 30 < mapped.0.len(), "{}", valued.0.len());
            }
            // Without the status label: other names, so mapped.
            let fewer =
                r#"a="k",http_route="/c",job="api",metric="queue_depth",otel_scope_name="s""#;
            let text = SeriesText::mapped_or_valued(index, fewer, shared(fewer), &origin.own_names)
                .unwrap();
            assert!(text.mapped_form());
            assert_eq!(joined(&text), fewer);
        }
    }

    /// Label text that is not a list of `name="value"` labels as the
    /// translation writes them is not split into values.
    #[test]
    fn only_well_formed_label_text_splits_into_values() {
        assert_eq!(raw_labels(""), Some(vec![]));
        assert_eq!(
            raw_labels(r#"a="1",b="x\"y\\",c="""#),
            Some(vec![("a", "1"), ("b", r#"x\"y\\"#), ("c", "")])
        );
        for bad in [
            r#"a="1","#,
            r#"a="1"b="2""#,
            r#"a="1"#,
            r#"a=1"#,
            r#",a="1""#,
            r#"a="\"#,
        ] {
            assert_eq!(raw_labels(bad), None, "{bad}");
        }
    }

    /// The run a series leaves to its origin is the longest piece of the
    /// common labels its block has whole: all of them, or the longer side
    /// of an attribute's label that sorts between them.
    #[test]
    fn the_longest_common_run_is_found_whole_or_around_an_attribute() {
        let common = r#"instance="i",job="api",metric="queue_depth",otel_scope_name="s""#;
        let whole = format!(r#"code="1",{common},route="/a""#);
        let at = whole.find("instance").unwrap();
        assert_eq!(
            longest_common_run(&whole, common),
            Some(at..at + common.len())
        );
        // `kind` sorts between `job` and `metric`: the longer side wins.
        let split = r#"instance="i",job="api",kind="x",metric="queue_depth",otel_scope_name="s",route="/a""#;
        let run = longest_common_run(split, common).unwrap();
        assert_eq!(&split[run], r#"metric="queue_depth",otel_scope_name="s""#);
        // None of it: nothing to leave.
        assert_eq!(longest_common_run(r#"route="/a""#, common), None);
        assert_eq!(longest_common_run(&whole, ""), None);
    }

    /// Attributes that the block does not carry one to one stay packed:
    /// two keys on one label, a value the block leaves out, a value
    /// written otherwise.
    #[test]
    fn attributes_not_read_back_exactly_are_not_mapped() {
        let two = vec![
            kv("a.b", Value::StringValue("1".into())),
            kv("a_b", Value::StringValue("2".into())),
        ];
        let marked = format!(r#"a_b="{};{}""#, key_marker(0), key_marker(1));
        let parse = parse_borrowed;
        assert_eq!(label_keys(&parse(r#"a_b="1;2""#), &marked, &two), None);

        let empty = vec![
            kv("a", Value::StringValue("1".into())),
            kv("b", Value::StringValue(String::new())),
        ];
        let marked = format!(r#"a="{}",b="{}""#, key_marker(0), key_marker(1));
        assert_eq!(label_keys(&parse(r#"a="1""#), &marked, &empty), None);

        let double = vec![kv("ratio", Value::DoubleValue(0.25))];
        let marked = format!(r#"ratio="{}""#, key_marker(0));
        assert_eq!(
            label_keys(&parse(r#"ratio="0.250""#), &marked, &double),
            None
        );
        assert!(label_keys(&parse(r#"ratio="0.25""#), &marked, &double).is_some());

        // Past the key lists an origin keeps, a new list has no index.
        let origin = origin();
        for i in 0..MAX_LABEL_KEYS {
            let keys: LabelKeys = vec![Some(format!("k{i}").into())].into();
            assert_eq!(origin.learn_label_keys(i as u64, keys), Some(i as u16));
        }
        assert_eq!(origin.learn_label_keys(1, vec![None].into()), None);
        // Shapes are remembered up to their own bound.
        let first: LabelKeys = vec![Some("k0".into())].into();
        for shape in 0..2 * MAX_SHAPES as u64 {
            assert_eq!(origin.learn_label_keys(shape, first.clone()), Some(0));
        }
        assert_eq!(origin.label_keys.lock().by_shape.len(), MAX_SHAPES);
        assert_eq!(
            origin.learn_label_keys(1, vec![Some("k7".into())].into()),
            Some(7)
        );
    }

    #[test]
    fn unpacks_what_was_packed_in_order_and_smaller() {
        let attributes = vec![
            kv("service.name", Value::StringValue("checkout".into())),
            kv("http.status_code", Value::IntValue(503)),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("empty", Value::StringValue(String::new())),
            kv(
                "list",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::BoolValue(true)),
                    }],
                }),
            ),
            KeyValue {
                key: "no value".into(),
                ..Default::default()
            },
        ];
        let packed = PackedAttributes::pack(&attributes);
        assert_eq!(packed.unpack(), attributes);
        let owned = attributes.len() * size_of::<KeyValue>();
        assert!(packed.0.len() < owned / 2, "{}", packed.0.len());
        assert!(PackedAttributes::pack(&[]).unpack().is_empty());
    }
}
