//! Spare lists: a request's scratch list, handed back to its thread when
//! the request is done and filled again by the next request read on that
//! thread. A busy receiver then does not allocate, grow and free the same
//! lists of a thousand entries per request (nor have the allocator's
//! heap profiler sample them).
//!
//! Each kind of list has its own thread-local slot, declared where it is
//! used (`thread_local! { static S: Spare<T> = const { Spare::new() } }`).
//! A slot keeps one list, the larger of those handed back, and only one
//! with room for at most [`MAX_KEPT`] entries: what a burst of huge
//! requests grew is let go with them.
//!
//! Lists of entries that borrow from the request (`T<'a>`) are kept as
//! `T<'static>` and relabelled with [`relabel`] (they are empty then:
//! nothing borrowed is kept).

use std::cell::Cell;
use std::thread::LocalKey;

/// One thread's spare list of `T`.
pub struct Spare<T>(Cell<Vec<T>>);

impl<T> Spare<T> {
    pub const fn new() -> Self {
        Self(Cell::new(Vec::new()))
    }
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// This thread's spare list from `slot`, empty; a new list when there is
/// none (or the thread is being torn down).
pub fn take<T>(slot: &'static LocalKey<Spare<T>>) -> Vec<T> {
    slot.try_with(|spare| spare.0.take()).unwrap_or_default()
}

/// The most entries a list kept has room for (a few MB at most, for
/// the largest entries kept).
pub const MAX_KEPT: usize = 1 << 14;

/// Hands `list` back to this thread's `slot`, emptied, unless it has
/// room for more than [`MAX_KEPT`] entries; the slot keeps the larger of
/// it and the list it held.
pub fn give<T>(slot: &'static LocalKey<Spare<T>>, list: Vec<T>) {
    give_at_most(slot, list, MAX_KEPT);
}

/// [`give`] with a bound of `max` entries.
fn give_at_most<T>(slot: &'static LocalKey<Spare<T>>, mut list: Vec<T>, max: usize) {
    if list.capacity() == 0 || list.capacity() > max {
        return;
    }
    list.clear();
    let _ = slot.try_with(|spare| {
        let kept = spare.0.take();
        spare.0.set(if kept.capacity() > list.capacity() {
            kept
        } else {
            list
        });
    });
}

/// `list`, emptied, as a list of `U`: for `T` and `U` that differ only in
/// lifetimes (so in size and alignment not at all) it keeps the same
/// allocation (the standard library collects a consumed list into one of
/// a same-sized type in place); otherwise it is a new, empty list.
pub fn relabel<T, U>(list: Vec<T>) -> Vec<U> {
    list.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static NUMBERS: Spare<u64> = const { Spare::new() };
        static WORDS: Spare<&'static str> = const { Spare::new() };
    }

    #[test]
    fn a_list_handed_back_is_taken_again_empty_with_its_room() {
        let mut list = take(&NUMBERS);
        list.extend(0..1000);
        let (room, at) = (list.capacity(), list.as_ptr());
        give(&NUMBERS, list);
        let again = take(&NUMBERS);
        assert!(again.is_empty());
        assert_eq!((again.capacity(), again.as_ptr()), (room, at));
        // Taken: the slot is empty until the list comes back.
        assert_eq!(take(&NUMBERS).capacity(), 0);
    }

    #[test]
    fn the_slot_keeps_the_larger_list_and_none_past_its_bound() {
        give_at_most(&NUMBERS, Vec::with_capacity(10), 100);
        give_at_most(&NUMBERS, Vec::with_capacity(50), 100);
        give_at_most(&NUMBERS, Vec::with_capacity(20), 100);
        assert_eq!(take(&NUMBERS).capacity(), 50);
        give_at_most(&NUMBERS, Vec::with_capacity(101), 100);
        give(&NUMBERS, Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(take(&NUMBERS).capacity(), 0);
    }

    #[test]
    fn a_list_of_borrowed_entries_is_kept_in_the_same_allocation() {
        let text = String::from("a b c");
        let mut words: Vec<&str> = relabel(take(&WORDS));
        words.extend(text.split(' '));
        let (room, at) = (words.capacity(), words.as_ptr() as usize);
        give(&WORDS, relabel(words));
        drop(text);
        let kept = take(&WORDS);
        assert!(kept.is_empty());
        assert_eq!((kept.capacity(), kept.as_ptr() as usize), (room, at));
    }
}
