//! The label block of an exposition line (`a="1",b="x\"y"`, without
//! the braces) read back into its names and values: what the exporter's
//! translation writes, and what a processor that keeps only the block
//! reads its labels from.

/// The (name, unescaped value) pairs of a canonical label block
/// (`a="1",b="x\"y"`), in block order. The inverse of what
/// the exporter's label translation writes.
pub fn parse(block: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                c => value.push(c),
            }
        }
        out.push((name.to_string(), value));
        rest = after[end..].strip_prefix(',').unwrap_or(&after[end..]);
    }
    out
}
