//! Checking metadata: signatures against the keys and threshold that must sign a role. One
//! place, used by the verifying updater's trusted set, `validate`, `add-targets --wait`, the
//! root ceremony and the signers' checks of what they load ([`crate::trusted`] walks the
//! repository with these, from the agent's pinned root).
//!
//! Invariant: a key id is a label. A threshold counts distinct public keys
//! ([`crate::keys::same_key`]), and a key map that lists one key under two ids is refused.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tough::schema::key::Key;
use tough::schema::RoleType;

use crate::schema::{Delegations, KeyMap, Root};
use crate::{canonical, keys, Error, Result};

/// Keys and threshold that must sign a role. Key ids are labels: a threshold counts distinct
/// public keys, and a key map that lists one key under two ids is refused.
pub(crate) struct Authority<'a> {
    keys: &'a KeyMap,
    keyids: Vec<String>,
    threshold: u64,
    /// Count a signature by the key it verifies under, whatever id it carries. A signer
    /// checking its own state asks "did a key of this role sign this?": after a root renames
    /// a key (a change of key-id rule), the files signed under its old id still are.
    by_key: bool,
}

impl<'a> Authority<'a> {
    /// The keys a signature under `keyid` may be by: the key it names, if the role lists
    /// that id, or with `by_key` each of `role_keys` (the role's keys).
    fn candidates(&self, keyid: &str, role_keys: &[&'a Key]) -> Vec<&'a Key> {
        if self.by_key {
            return role_keys.to_vec();
        }
        self.keys
            .iter()
            .filter(|(id, _)| hex::encode(id) == keyid && self.keyids.iter().any(|k| k == keyid))
            .map(|(_, k)| k)
            .collect()
    }

    /// The same keys and threshold, a signature counted by the key it verifies under.
    pub(crate) fn by_key(self) -> Authority<'a> {
        Authority {
            by_key: true,
            ..self
        }
    }

    /// Any one of `keys` (the submitter keys of [`crate::submission`]).
    pub(crate) fn any_of(keys: &'a KeyMap) -> Authority<'a> {
        Authority {
            keys,
            keyids: keys.keys().map(hex::encode).collect(),
            threshold: 1,
            by_key: false,
        }
    }
}

/// Refuses a key map (a root's, or a delegation's) that lists one public key under two ids:
/// signatures under both would otherwise count twice towards a threshold.
pub(crate) fn refuse_duplicate_keys(keys: &KeyMap, whose: &str) -> Result<()> {
    let mut seen: Vec<(&Key, &[u8])> = Vec::with_capacity(keys.len());
    for (id, key) in keys {
        if let Some((_, other)) = seen.iter().find(|(k, _)| keys::same_key(k, key)) {
            let (mut a, mut b) = (hex::encode(other), hex::encode(id));
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            return Err(fail(format!(
                "{whose} lists one public key under two ids ({a} and {b})"
            )));
        }
        seen.push((key, id.as_ref()));
    }
    Ok(())
}

pub(crate) fn fail(msg: impl Into<String>) -> Error {
    Error::Verify(msg.into())
}

/// The `signed` part of a metadata file, parsed but not yet verified: what a root must be
/// read as before its own keys can check it. Fails with "`what` does not parse".
pub(crate) fn unverified<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|mut v| v.get_mut("signed").map(Value::take))
        .and_then(|s| serde_json::from_value(s).ok())
        .ok_or_else(|| fail(format!("{what} does not parse")))
}

/// A metadata file as it is on disk: the signatures, and the `signed` object's own bytes.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    signatures: Vec<SignatureRef<'a>>,
    #[serde(borrow)]
    signed: &'a serde_json::value::RawValue,
}

#[derive(serde::Deserialize)]
struct SignatureRef<'a> {
    #[serde(borrow)]
    keyid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sig: std::borrow::Cow<'a, str>,
}

/// Parses `bytes` and checks the signatures against `authority`; returns the `signed` part.
///
/// A signature is checked over the canonical JSON of `signed` (TUF 1.0 §4.1). Files written
/// by our signers are canonical already, so each signature is first checked over the bytes
/// of `signed` as they are: valid there, the key holder signed exactly those bytes, and the
/// (costly, for a large snapshot) re-encoding is skipped.
pub(crate) fn verify<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    authority: &Authority<'_>,
) -> Result<T> {
    let raw = verify_raw(bytes, what, authority)?;
    serde_json::from_slice(raw).map_err(|e| fail(format!("{what}: not valid metadata: {e}")))
}

/// [`verify`], returning the verified bytes of `signed` for the caller to parse.
pub(crate) fn verify_raw<'a>(
    bytes: &'a [u8],
    what: &str,
    authority: &Authority<'_>,
) -> Result<&'a [u8]> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| fail(format!("{what}: not a signed metadata file: {e}")))?;
    let raw = envelope.signed.get().as_bytes();
    // One signature per key id (as python-tuf reads metadata): a second one under the same
    // id is malformed metadata, not a second chance.
    for (i, sig) in envelope.signatures.iter().enumerate() {
        if envelope.signatures[..i]
            .iter()
            .any(|s| s.keyid == sig.keyid)
        {
            return Err(fail(format!(
                "{what}: two signatures under key id {}",
                sig.keyid
            )));
        }
    }
    let mut message = Message {
        raw,
        canonical: None,
        what,
    };
    // The keys that signed validly; each counts once, whatever id it signed under.
    let mut valid: Vec<&Key> = Vec::new();
    let role_keys: Vec<&Key> = authority
        .keys
        .iter()
        .filter(|(id, _)| authority.keyids.contains(&hex::encode(id)))
        .map(|(_, k)| k)
        .collect();
    for sig in &envelope.signatures {
        let Ok(sig_bytes) = hex::decode(sig.sig.as_bytes()) else {
            continue;
        };
        for key in authority.candidates(&sig.keyid, &role_keys) {
            if valid.iter().any(|v| keys::same_key(v, key)) {
                continue;
            }
            if message.verifies(key, &sig_bytes)? {
                valid.push(key);
                break;
            }
        }
    }
    if (valid.len() as u64) < authority.threshold {
        return Err(fail(format!(
            "{what}: {} valid signature(s), {} needed",
            valid.len(),
            authority.threshold
        )));
    }
    Ok(raw)
}

/// What a signature covers: the bytes of `signed` as written, or else their canonical
/// JSON, encoded only when a signature does not verify over the bytes as written.
struct Message<'a> {
    raw: &'a [u8],
    canonical: Option<Vec<u8>>,
    what: &'a str,
}

impl Message<'_> {
    /// Whether `sig` by `key` verifies over the bytes as written or their canonical form.
    fn verifies(&mut self, key: &Key, sig: &[u8]) -> Result<bool> {
        if keys::verify(key, self.raw, sig) {
            return Ok(true);
        }
        if self.canonical.is_none() {
            let value: Value = serde_json::from_slice(self.raw)
                .map_err(|e| fail(format!("{}: not JSON: {e}", self.what)))?;
            self.canonical = Some(canonical::value_to_vec(&value, self.what)?);
        }
        let canonical = self.canonical.as_deref().expect("set above");
        Ok(canonical != self.raw && keys::verify(key, canonical, sig))
    }
}

pub(crate) fn root_authority(root: &Root, role: RoleType) -> Result<Authority<'_>> {
    let r = root
        .roles
        .get(&role)
        .ok_or_else(|| fail(format!("root lists no {role:?} role")))?;
    refuse_duplicate_keys(&root.keys, &format!("root v{}", root.version))?;
    Ok(Authority {
        keys: &root.keys,
        keyids: r.keyids.iter().map(hex::encode).collect(),
        threshold: r.threshold.get(),
        by_key: false,
    })
}

pub(crate) fn delegated_authority<'a>(
    delegations: &'a Delegations,
    name: &str,
) -> Result<Authority<'a>> {
    let r = delegations
        .roles
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| fail(format!("no delegation to {name}")))?;
    authority(
        &delegations.keys,
        &r.keyids,
        r.threshold.get(),
        &format!("the delegation to {name}"),
    )
}

/// `threshold` of the keys `keyids` names in `keys` (a delegation's, as `whose` says).
pub(crate) fn authority<'a>(
    keys: &'a KeyMap,
    keyids: &[tough::schema::decoded::Decoded<tough::schema::decoded::Hex>],
    threshold: u64,
    whose: &str,
) -> Result<Authority<'a>> {
    refuse_duplicate_keys(keys, whose)?;
    Ok(Authority {
        keys,
        keyids: keyids.iter().map(hex::encode).collect(),
        threshold,
        by_key: false,
    })
}

/// Parses `bytes` (the file at `path`) and checks it is signed as `delegations` require for
/// the delegated role `name`.
pub(crate) fn verify_delegated<T: DeserializeOwned>(
    bytes: &[u8],
    path: &std::path::Path,
    delegations: &Delegations,
    name: &str,
) -> Result<T> {
    let what = crate::schema::listed_name(name);
    delegated_authority(delegations, name)
        .and_then(|a| verify(bytes, &what, &a.by_key()))
        .map_err(|e| Error::Untrusted {
            path: path.into(),
            reason: format!("not signed by the keys targets delegates {name} to: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root that lists one key under its php-tuf id and its spec id (the second copy with
    /// `keyid_hash_algorithms`, as older signers publish keys), signed under both: the key
    /// counts once, and such a root is refused outright.
    #[test]
    fn one_key_under_two_ids_counts_once_and_is_refused() {
        use crate::keys::{key_id, KeyIdRule, SigningKey};
        use crate::repository::signed::hex_decoded;
        let (key, _) = SigningKey::generate().unwrap();
        let ids: Vec<String> = [KeyIdRule::PhpTuf, KeyIdRule::Spec]
            .iter()
            .map(|rule| key_id(key.public(), *rule).unwrap())
            .collect();
        let mut root = Root {
            spec_version: "1.0.0".into(),
            consistent_snapshot: true,
            version: std::num::NonZeroU64::new(1).unwrap(),
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
            keys: Default::default(),
            roles: Default::default(),
            _extra: Default::default(),
        };
        let mut decorated = key.public().clone();
        if let tough::schema::key::Key::Ed25519 { _extra, .. } = &mut decorated {
            _extra.insert(
                "keyid_hash_algorithms".into(),
                serde_json::json!(["sha256", "sha512"]),
            );
        }
        assert_ne!(&decorated, key.public());
        root.keys
            .insert(hex_decoded(&ids[0]).unwrap(), key.public().clone());
        root.keys.insert(hex_decoded(&ids[1]).unwrap(), decorated);
        root.roles.insert(
            RoleType::Root,
            tough::schema::RoleKeys {
                keyids: ids.iter().map(|id| hex_decoded(id).unwrap()).collect(),
                threshold: std::num::NonZeroU64::new(2).unwrap(),
                _extra: Default::default(),
            },
        );
        let message = canonical::to_vec(&root, "root").unwrap();
        let sig = hex::encode(key.sign(&message).unwrap());
        let signatures: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({"keyid": id, "sig": sig}))
            .collect();
        let file = serde_json::to_vec(&serde_json::json!({
            "signatures": signatures,
            "signed": serde_json::to_value(&root).unwrap(),
        }))
        .unwrap();
        let err = root_authority(&root, RoleType::Root).err().unwrap();
        assert!(
            err.to_string().contains("one public key under two ids"),
            "{err}"
        );
        // Without the refusal, the two signatures still count as one key.
        let keys = root.keys.clone();
        let authority = Authority {
            keys: &keys,
            keyids: ids.clone(),
            threshold: 2,
            by_key: false,
        };
        let err = verify::<Root>(&file, "root", &authority).unwrap_err();
        assert!(
            err.to_string().contains("1 valid signature(s), 2 needed"),
            "{err}"
        );
    }
}
