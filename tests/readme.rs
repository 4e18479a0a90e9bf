//! Every `tuf-signer` and `tuf-client` command the READMEs show names a subcommand and flags
//! the binaries have: each is run with `--help` appended, which clap answers only when every
//! flag before it exists (an unknown one is an error first). So the documented commands
//! cannot drift from the code unnoticed; `tests/quickstart.rs` runs the README's first
//! command itself.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The command lines in the ```sh blocks of `text`: continuation lines joined, comments cut.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = match trimmed.find(" #") {
            Some(i) => &trimmed[..i],
            None if trimmed.starts_with('#') => "",
            None => trimmed,
        };
        pending.push_str(code.trim_end_matches('\\').trim());
        pending.push(' ');
        if !code.ends_with('\\') {
            let command = pending.trim().to_string();
            if !command.is_empty() {
                out.push(command);
            }
            pending.clear();
        }
    }
    out
}

/// Splits a command line into words as a shell would for these simple lines: quotes group,
/// and the brackets that mark an optional part (`[--role snapshot]`) are dropped.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, '[' | ']') => {}
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_command_the_readmes_show_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for doc in ["README.md", ".ddev/README.md", "docs/verification.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for line in commands(&text) {
            let mut args = words(&line);
            // `ddev tuf-client ...` runs the same binary in a container.
            if args.first().is_some_and(|w| w == "ddev") {
                args.remove(0);
            }
            let binary = match args.first().map(String::as_str) {
                Some("tuf-signer") => SIGNER,
                Some("tuf-client") => CLIENT,
                _ => continue,
            };
            let out = run(Command::new(binary).args(&args[1..]).arg("--help"));
            assert!(
                out.status.success(),
                "{doc}: `{line}` does not parse:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} commands found in the READMEs"
    );
    eprintln!("{checked} documented commands parse");
}
