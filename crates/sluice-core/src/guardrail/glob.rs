//! A tiny glob matcher (`*` and `?`) for table and function patterns.

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (including none) and `?` matches exactly one. Case-insensitive, since
/// patterns are written by people and identifiers are compared after folding.
///
/// Runs in O(len(pattern) × len(text)) at worst: the classic two-pointer
/// algorithm that backtracks only to the last `*`, so a hostile pattern or
/// name cannot make it explode.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    matches(&p, &t)
}

/// [`glob_match`] with case kept: for file paths, where `/Data` and
/// `/data` are two places.
pub fn glob_match_exact(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&p, &t)
}

fn matches(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn table() {
        let cases = [
            ("customers", "customers", true),
            ("customers", "customer", false),
            ("Customers", "CUSTOMERS", true),
            ("audit_*", "audit_log", true),
            ("audit_*", "audit_", true),
            ("audit_*", "audits", false),
            ("*.secrets", "public.secrets", true),
            ("*.secrets", "secrets", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("pg_*", "pg_read_file", true),
            ("dblink*", "dblink_exec", true),
            ("**", "anything", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn hostile_pattern_stays_fast() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5000);
        assert!(!glob_match(&pattern, &text));
    }
}
