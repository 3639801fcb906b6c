//! Name patterns: `*` matches any run of characters (also none), `?`
//! exactly one byte; everything else matches itself. Matching works on
//! bytes and allocates nothing (it runs for every metric of a request).

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Include/exclude lists.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        Self {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }
    }

    pub fn selects(&self, name: &str) -> bool {
        self.include.iter().any(|p| matches(p, name))
            && !self.exclude.iter().any(|p| matches(p, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("*duration*", "http.server.request.duration"));
        assert!(matches("http.*.duration", "http.server.request.duration"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*", ""));
        assert!(!matches("*latency", "latency.p95"));
        assert!(matches("exact", "exact"));
        let s = Selection::new(&["*duration*".into()], &["*.internal.*".into()]);
        assert!(s.selects("rpc.duration"));
        assert!(!s.selects("x.internal.duration"));
        assert!(!s.selects("queue.size"));
    }
}
