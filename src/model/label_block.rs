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

/// Where each label of a canonical label block is in it (`name="value"`,
/// without the commas between them), in block order.
pub fn label_spans(block: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(eq) = block[at..].find("=\"") {
        let after = at + eq + 2;
        let (_, end) = value_of(&block[after..]);
        out.push(at..after + end);
        at = after + end;
        if block[at..].starts_with(',') {
            at += 1;
        }
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
    fn label_spans_cover_each_label_escapes_and_all() {
        let block = r#"a="plain",b="q\"\n\\,=\"",c="""#;
        let spans = label_spans(block);
        let pieces: Vec<&str> = spans.into_iter().map(|r| &block[r]).collect();
        assert_eq!(pieces, [r#"a="plain""#, r#"b="q\"\n\\,=\"""#, r#"c="""#]);
        assert!(label_spans("").is_empty());
        assert!(label_spans("no labels").is_empty());
    }

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
