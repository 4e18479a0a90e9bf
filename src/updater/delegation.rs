//! Which delegated roles may sign for a target (TUF 1.0 §4.5 `paths` and
//! `path_hash_prefixes`), in time linear in the sizes of the pattern and the name.
//!
//! Invariant: `*` and `?` never match `/`, so a pattern matches a name only segment by
//! segment (as python-tuf matches them), and no pattern can make matching slow: each segment
//! is matched by the two-pointer wildcard algorithm, at most pattern × name steps, and the
//! updater refuses patterns longer or more numerous than its [`super::Config`] allows (and
//! reads them as plain strings: [`crate::schema::DelegatedRole`]).

/// Shell-style matching of a TUF PATHPATTERN, as python-tuf matches it (`fnmatch` on each
/// `/`-separated segment): `*` any run, `?` any one character, `[seq]` and `[!seq]` (with
/// ranges such as `a-z`) one character of, or not of, the set; none of them crosses `/`.
pub fn path_matches(pattern: &str, name: &str) -> bool {
    let (mut p, mut n) = (pattern.split('/'), name.split('/'));
    loop {
        match (p.next(), n.next()) {
            (None, None) => return true,
            (Some(ps), Some(ns))
                if segment_matches(&tokens(ps), &ns.chars().collect::<Vec<_>>()) => {}
            _ => return false,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Char(char),
    Any,
    Star,
    /// A bracket set: negated, and its (low, high) ranges (a single character is c-c).
    Set(bool, Vec<(char, char)>),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::Any => true,
            Token::Star => unreachable!("handled by the matcher"),
            Token::Set(negated, ranges) => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

/// A pattern segment as fnmatch reads it: a `[` with no closing `]` is a plain `[`, and a `]`
/// right after `[` or `[!` belongs to the set.
fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '[' => {
                let mut j = i + 1;
                let negated = chars.get(j) == Some(&'!');
                if negated {
                    j += 1;
                }
                let first = j;
                while j < chars.len() && (chars[j] != ']' || j == first) {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push(Token::Char('['));
                } else {
                    let set = &chars[first..j];
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == '-' {
                            ranges.push((set[k], set[k + 2]));
                            k += 3;
                        } else {
                            ranges.push((set[k], set[k]));
                            k += 1;
                        }
                    }
                    out.push(Token::Set(negated, ranges));
                    i = j;
                }
            }
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

/// One segment: on a mismatch after a `*`, the `*` takes one more character and matching
/// resumes; no other backtracking is needed, so it never takes more than |p| × |n| steps.
fn segment_matches(p: &[Token], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == Token::Star {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi].matches(n[ni]) {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, ni));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_do_not_cross_folders() {
        assert!(path_matches("drupal/*", "drupal/token"));
        assert!(!path_matches("drupal/*", "drupal/token/1.0.0.0"));
        assert!(path_matches("drupal/*/*", "drupal/token/1.0.0.0"));
        assert!(path_matches("p2/?.json", "p2/a.json"));
        assert!(!path_matches("p2/?.json", "p2/ab.json"));
        assert!(path_matches("*.tgz", "a.tgz"));
        assert!(!path_matches("*.tgz", "a/b.tgz"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("*", ""));
        assert!(!path_matches("File", "file"), "case sensitive");
    }

    /// fnmatch's sets, as python-tuf reads them, and characters (not bytes) for `?` and `*`.
    #[test]
    fn sets_and_characters_as_fnmatch_reads_them() {
        assert!(path_matches("p2/[ab].json", "p2/a.json"));
        assert!(!path_matches("p2/[ab].json", "p2/c.json"));
        assert!(path_matches("p2/[!ab].json", "p2/c.json"));
        assert!(path_matches("v[0-9]", "v7"));
        assert!(path_matches("[]]", "]"));
        assert!(path_matches("a[", "a["), "an unclosed [ is a plain [");
        assert!(path_matches("?", "€"));
        assert!(!path_matches("*??€a", "€€a"));
        assert!(!path_matches("*??é?", "€éa"));
        assert!(path_matches("*?é?", "€éa"));
    }

    /// `*` × 300 against a long name that does not match: exponential in a backtracking
    /// matcher, at most |p| × |n| steps here.
    #[test]
    fn many_stars_stay_fast() {
        let pattern = format!("{}x", "*".repeat(300));
        let name = "a".repeat(5000);
        assert!(!path_matches(&pattern, &name));
        let pattern = "*a".repeat(300);
        assert!(path_matches(&pattern, &"a".repeat(400)));
    }
}
