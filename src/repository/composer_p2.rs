//! Released versions stay put inside Composer's metadata.
//!
//! `p2/VENDOR/NAME.json` is mutable (Composer rewrites it whenever a release is added), but
//! what it says of a version already released is not: a site that locked `1.9.0` must get the
//! same archive and the same dependencies tomorrow. Invariant: a new `p2/VENDOR/NAME.json`
//! (not `~dev.json`) is signed without `--replace` only if every version it shares with the
//! one signed before keeps its `dist`, `source` and `require` (compared as JSON values;
//! versions matched by their normalised form, `1.9.0` and `v1.9.0` being `1.9.0.0`). Versions
//! may be added or dropped; other fields (descriptions, authors, support links) may change;
//! dev versions (`dev-*`, `*-dev`) are exempt. Both files are read from the repository's
//! `targets/` folder, where `add-targets --targets-dir` puts them, and checked against the
//! hashes signed for them: a change the signer cannot compare (a file not there) is refused
//! like one it can see breaks the rule, with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::layout::consistent_path;

/// The fields of a released version that never change without `--replace`: what is
/// installed (the archive, or the source a `--prefer-source` install checks out) and what
/// comes with it.
pub const FROZEN: [&str; 3] = ["dist", "source", "require"];

/// The largest p2 file compared (Drupal's largest are a few MB).
const MAX_P2: u64 = 64 << 20;

/// Whether `name` is Composer metadata of tagged releases: `p2/VENDOR/NAME.json`, not the
/// `~dev.json` of dev branches.
pub fn is_release_metadata(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("p2/") else {
        return false;
    };
    rest.split('/').count() == 2 && rest.ends_with(".json") && !rest.ends_with("~dev.json")
}

/// Why the change of `name` from the bytes with `old` sha256 to those with `new` breaks the
/// rule above, if it does; `targets` is the repository's `targets/` folder.
pub fn refused_change(
    targets: &Path,
    name: &str,
    old: &[u8; 32],
    new: &[u8; 32],
) -> Option<String> {
    let read = |sha256: &[u8; 32], which: &str| -> Result<Value, String> {
        let path = targets.join(consistent_path(name, &hex::encode(sha256)));
        // Written by the packaging pipeline's user: a plain file only, read without blocking.
        let bytes = crate::durable::read_plain(&path, MAX_P2).map_err(|e| {
            format!(
                "cannot compare the {which} {name} with the one signed before ({}: {e}), so \
                 no released version can be shown unchanged",
                path.display()
            )
        })?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        if digest.as_ref() != sha256 {
            return Err(format!(
                "{} does not hold the bytes signed for it",
                path.display()
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("the {which} {name} is not JSON: {e}"))
    };
    let outcome = read(old, "signed").and_then(|old| {
        let new = read(new, "new")?;
        let (old, new) = (versions(&old), versions(&new));
        let mut changed = Vec::new();
        for (key, before) in &old {
            let Some(after) = new.get(key) else { continue };
            for field in FROZEN {
                if before.get(field) != after.get(field) {
                    changed.push(format!("{} {} changes its {field}", key.0, key.1));
                }
            }
        }
        match changed.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{}: a released version's {} never change (a site that locked it must get the \
                 same archive and dependencies); submit with --replace if this is intended",
                changed.join(", "),
                FROZEN.join(" and ")
            )),
        }
    });
    outcome.err()
}

/// Every tagged version in a `p2` file, `(package, version) -> its fields`, expanded from
/// Composer 2's minified form (each entry lists only what changed from the one before it,
/// `"__unset"` removing a field) when the file says `"minified": "composer/2.0"`.
fn versions(file: &Value) -> BTreeMap<(String, String), serde_json::Map<String, Value>> {
    let minified = file.get("minified").and_then(Value::as_str) == Some("composer/2.0");
    let mut out = BTreeMap::new();
    let Some(packages) = file.get("packages").and_then(Value::as_object) else {
        return out;
    };
    for (package, entries) in packages {
        let mut expanded = serde_json::Map::new();
        for entry in entries.as_array().into_iter().flatten() {
            let Some(fields) = entry.as_object() else {
                continue;
            };
            if !minified {
                expanded = serde_json::Map::new();
            }
            for (k, v) in fields {
                if v.as_str() == Some("__unset") {
                    expanded.remove(k);
                } else {
                    expanded.insert(k.clone(), v.clone());
                }
            }
            let version = match expanded.get("version_normalized").and_then(Value::as_str) {
                Some(normalized) => normalized.to_string(),
                None => normalize(
                    expanded
                        .get("version")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
            };
            if version.is_empty() || version.starts_with("dev-") || version.ends_with("-dev") {
                continue;
            }
            out.insert((package.clone(), version), expanded.clone());
        }
    }
    out
}

/// A tagged version as Composer normalises the plain ones: `v1.9` and `1.9.0` are `1.9.0.0`.
/// Anything else (a pre-release suffix, a branch) is kept as written.
fn normalize(version: &str) -> String {
    let plain = version.strip_prefix(['v', 'V']).unwrap_or(version);
    let parts: Vec<&str> = plain.split('.').collect();
    if parts.len() <= 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let mut parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
        parts.resize(4, "0".into());
        return parts.join(".");
    }
    version.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(dir: &Path, name: &str, value: &Value) -> [u8; 32] {
        let bytes = serde_json::to_vec(value).unwrap();
        let sha: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
            .as_ref()
            .try_into()
            .unwrap();
        let path = dir.join(consistent_path(name, &hex::encode(sha)));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        sha
    }

    #[test]
    fn a_released_versions_dist_and_require_stay_put() {
        let dir = tempfile::tempdir().unwrap();
        let name = "p2/drupal/token.json";
        let v190 = json!({"version": "1.9.0", "version_normalized": "1.9.0.0",
            "dist": {"type": "zip", "url": "https://example.org/token-1.9.0.zip", "shasum": "a"},
            "require": {"drupal/core": "^10"}, "description": "Tokens"});
        let old = stored(
            dir.path(),
            name,
            &json!({"packages": {"drupal/token": [v190]}}),
        );

        // A new release added, the description of the old one edited: fine.
        let mut edited = v190.clone();
        edited["description"] = json!("Tokens, better described");
        let v191 = json!({"version": "1.9.1", "version_normalized": "1.9.1.0",
            "dist": {"type": "zip", "url": "https://example.org/token-1.9.1.zip"}});
        let fine = stored(
            dir.path(),
            name,
            &json!({"packages": {"drupal/token": [v191, edited]}}),
        );
        assert_eq!(refused_change(dir.path(), name, &old, &fine), None);

        // The released version's archive or dependencies changed: refused, saying which.
        let mut moved = v190.clone();
        moved["dist"]["url"] = json!("https://evil.example/token-1.9.0.zip");
        let bad = stored(
            dir.path(),
            name,
            &json!({"packages": {"drupal/token": [moved]}}),
        );
        let why = refused_change(dir.path(), name, &old, &bad).unwrap();
        assert!(why.contains("1.9.0.0 changes its dist"), "{why}");
        let mut loosened = v190.clone();
        loosened["require"] = json!({"drupal/core": "*", "evil/pkg": "*"});
        let bad = stored(
            dir.path(),
            name,
            &json!({"packages": {"drupal/token": [loosened]}}),
        );
        let why = refused_change(dir.path(), name, &old, &bad).unwrap();
        assert!(why.contains("changes its require"), "{why}");

        // Minified (Composer 2): the second entry inherits the first's fields.
        let minified = json!({"minified": "composer/2.0", "packages": {"drupal/token": [
            {"version": "1.9.1", "version_normalized": "1.9.1.0",
             "dist": {"type": "zip", "url": "https://example.org/token-1.9.1.zip"},
             "require": {"drupal/core": "^10"}},
            {"version": "1.9.0", "version_normalized": "1.9.0.0",
             "dist": {"type": "zip", "url": "https://evil.example/x.zip"}}]}});
        let bad = stored(dir.path(), name, &minified);
        assert!(refused_change(dir.path(), name, &old, &bad).is_some());

        // Not there to compare: refused with the reason.
        let why = refused_change(dir.path(), name, &old, &[7; 32]).unwrap();
        assert!(why.contains("cannot compare"), "{why}");
        // The same version written without its normalised form is still the same version.
        let unnormalized = json!({"packages": {"drupal/token": [{"version": "v1.9.0",
            "dist": {"type": "zip", "url": "https://evil.example/x.zip"},
            "require": {"drupal/core": "^10"}}]}});
        let bad = stored(dir.path(), name, &unnormalized);
        assert!(refused_change(dir.path(), name, &old, &bad).is_some());
        assert_eq!(normalize("1.9"), "1.9.0.0");
        assert_eq!(normalize("1.9.0-beta1"), "1.9.0-beta1");
        assert!(is_release_metadata(name));
        assert!(!is_release_metadata("p2/drupal/token~dev.json"));
        assert!(!is_release_metadata("packages.json"));
    }
}
