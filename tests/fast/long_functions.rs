//! No function of the library or the binaries is longer than [`MOST_LINES`] lines, counted
//! from its `fn` line to its closing brace, outside test modules: a function that grew past
//! it does several steps, and reads better as those steps, each named. A function that grows
//! past it fails this test, which names it and where it is.

use std::path::Path;

use super::layers::sources;

/// The longest a function may be.
const MOST_LINES: usize = 60;

/// A line with its comment, string and character literals blanked, so that only the code's
/// own braces are counted.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => drop(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A character literal ('x', '\n', '{'); a lifetime ('a) has no closing quote.
                let rest: String = chars.clone().take(3).collect();
                let close = if rest.starts_with('\\') { 2 } else { 1 };
                if rest.chars().nth(close) == Some('\'') {
                    for _ in 0..=close {
                        chars.next();
                    }
                    out.push_str("''");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The index of the line that closes the item starting at `start` (its braces balance), or
/// that ends it with `;` before any brace.
fn end_of_item(lines: &[String], start: usize) -> usize {
    let (mut depth, mut opened) = (0i64, false);
    for (i, line) in lines.iter().enumerate().skip(start) {
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        opened |= line.contains('{');
        if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
            return i;
        }
    }
    lines.len() - 1
}

/// `(lines, file:line, name)` of every function over [`MOST_LINES`] in `file`.
fn long_functions(file: &Path) -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<String> = text.lines().map(code_of).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("#[cfg(test)]") {
            i = end_of_item(&lines, i + 1) + 1;
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == "fn") {
            let qualifiers = [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
            ];
            if words[..at].iter().all(|w| qualifiers.contains(w)) {
                let name = words.get(at + 1).map_or("", |w| {
                    w.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")
                });
                let length = end_of_item(&lines, i) - i + 1;
                if length > MOST_LINES {
                    out.push((length, format!("{}:{}", file.display(), i + 1), name.into()));
                }
            }
        }
        i += 1;
    }
    out
}

#[test]
fn no_function_is_longer_than_sixty_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 50, "read {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .flat_map(|f| long_functions(f))
        .map(|(n, at, name)| {
            let at = at
                .strip_prefix(&format!("{}/", root.display()))
                .unwrap_or(&at)
                .to_string();
            format!("{at} {name}: {n} lines")
        })
        .collect();
    assert!(
        long.is_empty(),
        "functions over {MOST_LINES} lines (split them along their steps):\n{}",
        long.join("\n")
    );
}

/// The counter itself: a function's braces in strings, characters and comments are not
/// counted, a test module is skipped, and a long function is found.
#[test]
fn the_counter_counts_code_braces_only() {
    assert_eq!(
        code_of(r#"let s = "{"; // }"#),
        r#"let s = "";"#.to_string() + " "
    );
    assert_eq!(code_of("let c = '{'; f::<'a>()"), "let c = ''; f::<'a>()");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    let body = "    x();\n".repeat(MOST_LINES);
    std::fs::write(
        &file,
        format!(
            "pub fn long() {{\n{body}}}\n#[cfg(test)]\nmod tests {{\nfn t() {{\n{body}}}\n}}\n"
        ),
    )
    .unwrap();
    let found = long_functions(&file);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].2.as_str()), (MOST_LINES + 2, "long"));
}
