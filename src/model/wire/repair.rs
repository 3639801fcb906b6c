//! Strings that are not valid UTF-8, repaired instead of refusing their
//! request. OTLP strings must be UTF-8, but some SDKs send other bytes
//! and Collectors forward them as they are; the OTLP guidance lets a
//! receiver replace them. A request whose validation fails on such a
//! string is validated once more with the failures noted instead of
//! returned ([`find_invalid_strings`]), and every invalid byte of those
//! strings is replaced by `?` in a copy of the request
//! ([`replace_invalid_utf8`]): one byte for one byte, so every length
//! prefix around them stays true. (U+FFFD takes three.)

use std::cell::RefCell;
use std::ops::Range;

use super::WireError;

thread_local! {
    /// While [`find_invalid_strings`] runs on this thread: the address
    /// ranges of the invalid strings met.
    static NOTED: RefCell<Option<Vec<Range<usize>>>> = const { RefCell::new(None) };
}

/// Called by a string read whose bytes are not UTF-8: notes them and
/// says so when [`find_invalid_strings`] is collecting on this thread
/// (the read then goes on with an empty string); `false` otherwise, and
/// the read fails.
#[cold]
pub(super) fn note_invalid(bytes: &[u8]) -> bool {
    NOTED.with_borrow_mut(|noted| match noted {
        Some(ranges) => {
            let at = bytes.as_ptr() as usize;
            ranges.push(at..at + bytes.len());
            true
        }
        None => false,
    })
}

/// Runs `validate` over `request` noting every invalid string instead of
/// failing on the first; their byte ranges in `request`, or the first
/// error of any other kind.
pub fn find_invalid_strings<T>(
    request: &[u8],
    validate: impl FnOnce(&[u8]) -> Result<T, WireError>,
) -> Result<Vec<Range<usize>>, WireError> {
    let previous = NOTED.replace(Some(Vec::new()));
    let outcome = validate(request);
    let noted = NOTED.replace(previous).unwrap_or_default();
    outcome?;
    let base = request.as_ptr() as usize;
    Ok(noted
        .into_iter()
        .filter_map(|r| {
            let start = r.start.checked_sub(base)?;
            let end = r.end.checked_sub(base)?;
            (end <= request.len()).then_some(start..end)
        })
        .collect())
}

/// Replaces every byte of `text` that is not part of a valid UTF-8
/// sequence by `?`, in place.
pub fn replace_invalid_utf8(text: &mut [u8]) {
    let mut from = 0;
    while let Err(e) = std::str::from_utf8(&text[from..]) {
        let bad = from + e.valid_up_to();
        let len = e.error_len().unwrap_or(text.len() - bad);
        text[bad..bad + len].fill(b'?');
        from = bad + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_sequences_become_question_marks_of_the_same_length() {
        let mut text = b"caf\xe9 \xf0\x9f\x98\x80 ok \xe2\x82 \xff\xfe end\xc3".to_vec();
        replace_invalid_utf8(&mut text);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "caf? \u{1f600} ok ?? ?? end?"
        );
    }
}
