//! The label block of an exposition line (`a="1",b="x\"y"`, without
//! the braces) read back into its names and values: what the exporter's
//! translation writes, and what a processor that keeps only the block
//! reads its labels from.

use std::borrow::Cow;

/// The (name, unescaped value) pairs of a canonical label block
/// (`a="1",b="x\"y"`), in block order. The inverse of what
/// the exporter's label translation writes.
pub fn parse(block: &str) -> Vec<(String, String)> {
    parse_borrowed(block)
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into_owned()))
        .collect()
}

/// [`parse`] without copying: names and values without escapes are
/// slices of `block`.
pub fn parse_borrowed(block: &str) -> Vec<(&str, Cow<'_, str>)> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, end) = value_of(after);
        out.push((name, value));
        rest = after[end..].strip_prefix(',').unwrap_or(&after[end..]);
    }
    out
}

/// The value at the start of `after` (what follows `name="`), unescaped,
/// and where it ends (past its closing quote, or the end of `after`).
fn value_of(after: &str) -> (Cow<'_, str>, usize) {
    let Some(stop) = after.find(['"', '\\']) else {
        return (Cow::Borrowed(after), after.len());
    };
    if after.as_bytes()[stop] == b'"' {
        return (Cow::Borrowed(&after[..stop]), stop + 1);
    }
    let mut value = String::from(&after[..stop]);
    let mut chars = after[stop..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (Cow::Owned(value), stop + i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => value.push(other),
                None => {}
            },
            c => value.push(c),
        }
    }
    (Cow::Owned(value), after.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_and_without_escapes_read_alike() {
        let block = r#"a="plain",b="q\"\n\\,=\"",c="",d="tail\\""#;
        let expected = [
            ("a", "plain"),
            ("b", "q\"\n\\,=\""),
            ("c", ""),
            ("d", "tail\\"),
        ];
        let borrowed = parse_borrowed(block);
        assert_eq!(borrowed.len(), expected.len());
        for ((name, value), (n, v)) in borrowed.iter().zip(expected) {
            assert_eq!((*name, value.as_ref()), (n, v));
        }
        assert!(matches!(borrowed[0].1, Cow::Borrowed(_)));
        assert!(matches!(borrowed[1].1, Cow::Owned(_)));
        assert_eq!(
            parse(block)[1],
            ("b".to_string(), "q\"\n\\,=\"".to_string())
        );
        // A value cut short ends the block.
        assert_eq!(
            parse(r#"a="1",b="x"#),
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert!(parse("").is_empty());
    }
}
