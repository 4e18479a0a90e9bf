//! ed25519 keys: one PKCS#8 PEM file per role, so each signer's container mounts only its own.
//!
//! We write what `openssl genpkey -algorithm ED25519` writes (PKCS#8 v1, RFC 8410), so that
//! OpenSSL and Python's `cryptography` read our keys, and we also read PKCS#8 v2 (what earlier
//! versions wrote) and raw DER. Private key bytes never leave this module: `Debug` prints the
//! key id.
//!
//! A key id is a label a root or a delegation gives a public key. We write ids by
//! [`KeyIdRule::PhpTuf`] unless told otherwise; everything that reads ids treats them as
//! opaque labels and compares public keys, never ids, to tell keys apart.
//!
//! We sign with ed25519 only (php-tuf verifies nothing else); [`verify`] checks every key
//! type of the specification, as a verifying client must.
//!
//! A key held in a PKCS#11 token ([`token`]) is named by a *reference file* in the key
//! file's place, holding a `pkcs11:` URI and no secret; [`SigningKey::load`] opens either, so
//! every command that takes a key file takes a token key.

pub mod token;

use std::fmt;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::{Ed25519Key, Ed25519Scheme, Key};

use crate::{canonical, Error, Result};

/// How a key id is computed from a public key. Both hash the key's canonical JSON with SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyIdRule {
    /// The key with `"keyid_hash_algorithms": ["sha256", "sha512"]` added (securesystemslib up
    /// to 0.30, Drupal's current signer). php-tuf, and so Composer's TUF plugin, accepts only
    /// these; python-tuf and go-tuf accept any id. The key is still published without the field.
    #[default]
    PhpTuf,
    /// The key exactly as published (TUF 1.0 §4.2). tough-based clients accept only these;
    /// php-tuf refuses them.
    Spec,
}

impl KeyIdRule {
    /// The rule `id` follows for `key`, if any.
    pub fn of(key: &Key, id: &[u8]) -> Option<KeyIdRule> {
        [KeyIdRule::PhpTuf, KeyIdRule::Spec]
            .into_iter()
            .find(|rule| {
                key_id(key, *rule).is_ok_and(|ours| hex::decode(ours).is_ok_and(|o| o == id))
            })
    }

    /// The rule every key of a key map follows; `None` if they follow none or differ.
    pub fn of_all<'a>(
        keys: impl IntoIterator<Item = (&'a Decoded<Hex>, &'a Key)>,
    ) -> Option<KeyIdRule> {
        let mut rules = keys.into_iter().map(|(id, key)| KeyIdRule::of(key, id));
        let first = rules.next()??;
        rules.all(|r| r == Some(first)).then_some(first)
    }
}

/// Where a role's signatures come from: the one seam every signature of the repository goes
/// through (metadata, jobs handed downstream, root drafts). [`FileKey`] is a key file; a key
/// held elsewhere (an HSM through PKCS#11, a cloud KMS) is one more implementation.
///
/// Signing is fallible: a token can be unplugged or refuse. A failed signature fails the
/// batch being signed, before anything is written, and the batch is retried.
pub trait Sign: Send + Sync {
    /// The raw ed25519 public key (32 bytes) whose private half signs.
    fn public_key(&self) -> Vec<u8>;

    /// The ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// An ed25519 key read from a file (PKCS#8, PEM or DER) or newly made.
pub struct FileKey {
    pair: Ed25519KeyPair,
}

impl FileKey {
    /// A new random key, and its PKCS#8 v1 PEM to store.
    pub fn generate() -> Result<(FileKey, String)> {
        let der =
            Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| Error::Key {
                path: "<new key>".into(),
                reason: "the system random generator failed".into(),
            })?;
        let pem = to_pem("PRIVATE KEY", der.as_ref().to_vec());
        Ok((Self::from_der(der.as_ref(), Path::new("<new key>"))?, pem))
    }

    /// Loads a key file (PKCS#8, PEM or DER).
    pub fn load(path: &Path) -> Result<FileKey> {
        Self::from_bytes(&read_key_file(path)?, path)
    }

    /// A key file's contents (PKCS#8, PEM or DER); `path` is for errors.
    fn from_bytes(bytes: &[u8], path: &Path) -> Result<FileKey> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            let parsed = pem::parse(bytes).map_err(|e| Error::Key {
                path: path.into(),
                reason: format!("not a PEM file: {e}"),
            })?;
            if parsed.tag() != "PRIVATE KEY" {
                return Err(Error::Key {
                    path: path.into(),
                    reason: format!(
                        "holds a {:?} block; expected an ed25519 PRIVATE KEY (PKCS#8)",
                        parsed.tag()
                    ),
                });
            }
            parsed.into_contents()
        } else {
            bytes.to_vec()
        };
        Self::from_der(&der, path)
    }

    fn from_der(der: &[u8], path: &Path) -> Result<FileKey> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| Error::Key {
            path: path.into(),
            reason: format!("not an ed25519 PKCS#8 private key ({e}); only ed25519 is supported"),
        })?;
        Ok(FileKey { pair })
    }
}

impl Sign for FileKey {
    fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

/// A role's signing key, wherever it is held ([`Sign`]), with its public key and the id it
/// signs under.
pub struct SigningKey {
    signer: Box<dyn Sign>,
    public: Key,
    key_id: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id)
    }
}

impl SigningKey {
    /// Signs through `signer`, under the id [`KeyIdRule::default`] gives its public key.
    pub fn new(signer: Box<dyn Sign>) -> Result<SigningKey> {
        let public = public_key(&signer.public_key());
        let key_id = key_id(&public, KeyIdRule::default())?;
        Ok(SigningKey {
            signer,
            public,
            key_id,
        })
    }

    /// A new random key file's key, and its PKCS#8 v1 PEM to store.
    pub fn generate() -> Result<(SigningKey, String)> {
        let (key, pem) = FileKey::generate()?;
        Ok((Self::new(Box::new(key))?, pem))
    }

    /// Loads a key file (PKCS#8, PEM or DER), or opens the token key a reference file
    /// names ([`token`]).
    pub fn load(path: &Path) -> Result<SigningKey> {
        let bytes = read_key_file(path)?;
        if token::is_reference(&bytes) {
            let uri = token::read_reference(path, &bytes)?;
            return Self::new(Box::new(token::TokenKey::open(&uri)?));
        }
        Self::new(Box::new(FileKey::from_bytes(&bytes, path)?))
    }

    /// The public key, as metadata lists it.
    pub fn public(&self) -> &Key {
        &self.public
    }

    /// The id this key signs under: by [`KeyIdRule::default`] until [`SigningKey::sign_as`]
    /// gives it the one a root uses.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs under `id` from now on: the id the root gives this key.
    pub fn sign_as(&mut self, id: &Decoded<Hex>) {
        self.key_id = hex::encode(id);
    }

    /// The signature of `message`; fails when the key's holder cannot sign (a token gone).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.signer.sign(message)
    }
}

/// A signer's keys: its role's key and, while a rotation of that key settles, the key it
/// replaced. The previous key co-signs the role's top-level file (timestamp, snapshot,
/// top-level targets; never the bins), so that a client that checks a refresh against the
/// root it started from (php-tuf, so Composer's TUF plugin: php-tuf issue #365) still finds a signature
/// it trusts after sleeping through the rotation; clients that follow the specification ignore
/// a signature by a key their root no longer lists.
#[derive(Debug)]
pub struct RoleKeys {
    /// The role's key: what signs every file of the role.
    pub key: SigningKey,
    /// The key it replaced, while a rotation settles; `None` when there is no previous key file.
    pub previous: Option<SigningKey>,
    /// Where the previous key is read from ([`previous_key_file`]), for errors about it.
    pub previous_file: std::path::PathBuf,
}

impl RoleKeys {
    /// The key in `key_file`, and the previous one if [`previous_key_file`] is there.
    pub fn load(key_file: &Path) -> Result<RoleKeys> {
        let key = SigningKey::load(key_file)?;
        let previous_file = previous_key_file(key_file);
        let previous = match previous_file.try_exists() {
            Ok(false) => None,
            Ok(true) => Some(SigningKey::load(&previous_file)?),
            Err(e) => {
                return Err(Error::Key {
                    path: previous_file.clone(),
                    reason: format!("cannot tell whether it is there: {e}"),
                })
            }
        };
        if previous
            .as_ref()
            .is_some_and(|p| same_key(p.public(), key.public()))
        {
            return Err(Error::Key {
                path: previous_file.clone(),
                reason: format!(
                    "is the same key as {}: it must hold the key that one replaced, or be removed",
                    key_file.display()
                ),
            });
        }
        Ok(RoleKeys {
            key,
            previous,
            previous_file,
        })
    }
}

/// Where a signer's keys are read from: at start, and again at each reload of its state (a
/// rotation may have put a previous key beside the key file; a token may be back).
#[derive(Clone)]
pub struct KeySource(std::sync::Arc<dyn Fn() -> Result<RoleKeys> + Send + Sync>);

impl KeySource {
    /// The key in `key_file` and its previous key beside it ([`RoleKeys::load`]).
    pub fn file(key_file: std::path::PathBuf) -> KeySource {
        KeySource::new(move || RoleKeys::load(&key_file))
    }

    /// Keys from anywhere else (a token, a test's key that cannot sign).
    pub fn new(load: impl Fn() -> Result<RoleKeys> + Send + Sync + 'static) -> KeySource {
        KeySource(std::sync::Arc::new(load))
    }

    /// Reads the keys now, from wherever this source keeps them.
    pub fn load(&self) -> Result<RoleKeys> {
        (self.0)()
    }
}

/// Where the key that `key_file` replaced is kept while a rotation settles, beside it:
/// `keys/timestamp.pem` → `keys/timestamp.previous.pem`; a token key's reference file
/// `keys/timestamp.pkcs11` → `keys/timestamp.previous.pkcs11`.
pub fn previous_key_file(key_file: &Path) -> std::path::PathBuf {
    let stem = key_file
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let extension = match key_file.extension() {
        Some(e) if e == token::REFERENCE_EXTENSION => token::REFERENCE_EXTENSION,
        _ => "pem",
    };
    key_file.with_file_name(format!("{stem}.previous.{extension}"))
}

/// A key file's bytes, or an error saying which file init wrote for the role.
fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Key {
        path: path.into(),
        reason: format!(
            "cannot read it ({source}); pass the key file (or token reference) `tuf-signer init` \
             wrote for this role"
        ),
    })
}

/// The DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Reads the public half of a key file: a `PUBLIC KEY` PEM (what keyholders hand over,
/// `openssl pkey -in key.pem -pubout`) or a private key file, of which only the public part
/// is kept.
pub fn load_public(path: &Path) -> Result<Key> {
    let bytes = std::fs::read(path).map_err(|source| Error::Key {
        path: path.into(),
        reason: format!("cannot read it ({source})"),
    })?;
    if let Ok(parsed) = pem::parse(&bytes) {
        if parsed.tag() == "PUBLIC KEY" {
            return public_from_spki(parsed.contents(), path);
        }
    }
    Ok(SigningKey::load(path)?.public().clone())
}

/// Reads every `PUBLIC KEY` block of a PEM file (one or more ed25519 public keys, as
/// `openssl pkey -pubout` writes them, concatenated).
pub fn load_public_keys(path: &Path) -> Result<Vec<Key>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Key {
        path: path.into(),
        reason: format!("cannot read it ({source})"),
    })?;
    let blocks = pem::parse_many(&bytes).map_err(|e| Error::Key {
        path: path.into(),
        reason: format!("not a PEM file: {e}"),
    })?;
    let keys = blocks
        .iter()
        .filter(|b| b.tag() == "PUBLIC KEY")
        .map(|b| public_from_spki(b.contents(), path))
        .collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Err(Error::Key {
            path: path.into(),
            reason: "holds no PUBLIC KEY block (make one with `openssl pkey -in key.pem -pubout`)"
                .into(),
        });
    }
    Ok(keys)
}

fn public_from_spki(der: &[u8], path: &Path) -> Result<Key> {
    match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(raw) if raw.len() == 32 => Ok(public_key(raw)),
        _ => Err(Error::Key {
            path: path.into(),
            reason: "not an ed25519 public key; only ed25519 is supported (make one with \
                     `openssl genpkey -algorithm ED25519`)"
                .into(),
        }),
    }
}

/// A public key as PEM (SubjectPublicKeyInfo), the form keyholders exchange.
pub fn public_pem(key: &Key) -> Option<String> {
    let Key::Ed25519 { keyval, .. } = key else {
        return None;
    };
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(keyval.public.as_ref());
    Some(to_pem("PUBLIC KEY", der))
}

/// PEM as OpenSSL writes it (LF line ends, 64 columns).
fn to_pem(tag: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der), config)
}

/// The TUF form of an ed25519 public key.
pub fn public_key(raw: &[u8]) -> Key {
    Key::Ed25519 {
        keyval: Ed25519Key {
            public: Decoded::<Hex>::from(raw.to_vec()),
            _extra: Default::default(),
        },
        scheme: Ed25519Scheme::Ed25519,
        _extra: Default::default(),
    }
}

/// Whether two published keys are the same key: same type, scheme and public value. Fields
/// beyond those (e.g. `keyid_hash_algorithms`, which older signers publish) do not make
/// another key.
pub fn same_key(a: &Key, b: &Key) -> bool {
    match (a, b) {
        (
            Key::Ed25519 {
                keyval: x,
                scheme: s,
                ..
            },
            Key::Ed25519 {
                keyval: y,
                scheme: t,
                ..
            },
        ) => x.public == y.public && s == t,
        (
            Key::Rsa {
                keyval: x,
                scheme: s,
                ..
            },
            Key::Rsa {
                keyval: y,
                scheme: t,
                ..
            },
        ) => x.public == y.public && s == t,
        (
            Key::Ecdsa {
                keyval: x,
                scheme: s,
                ..
            },
            Key::Ecdsa {
                keyval: y,
                scheme: t,
                ..
            },
        )
        | (
            Key::EcdsaOld {
                keyval: x,
                scheme: s,
                ..
            },
            Key::EcdsaOld {
                keyval: y,
                scheme: t,
                ..
            },
        ) => x.public == y.public && s == t,
        _ => false,
    }
}

/// The key id of `key` by `rule`: hex SHA-256 of its canonical JSON.
pub fn key_id(key: &Key, rule: KeyIdRule) -> Result<String> {
    let mut value = serde_json::to_value(key).map_err(|e| Error::Canonical {
        what: "public key".into(),
        reason: e.to_string(),
    })?;
    if rule == KeyIdRule::PhpTuf {
        value["keyid_hash_algorithms"] = serde_json::json!(["sha256", "sha512"]);
    }
    let bytes = canonical::value_to_vec(&value, "public key")?;
    Ok(hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref(),
    ))
}

/// Checks a signature by any of the specification's standard key types: ed25519, ECDSA P-256
/// (`ecdsa-sha2-nistp256`, DER signatures) and RSA-PSS with SHA-256 (`rsassa-pss-sha256`).
/// The signers sign with ed25519 only (php-tuf verifies no other type, and the root ceremony
/// refuses other keys), but a verifying client must accept every standard type.
pub fn verify(key: &Key, message: &[u8], sig: &[u8]) -> bool {
    use tough::schema::key::{EcdsaScheme, RsaScheme};
    let (algorithm, public): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match key {
        Key::Ed25519 { keyval, .. } => (&signature::ED25519, keyval.public.as_ref()),
        Key::Ecdsa {
            keyval,
            scheme: EcdsaScheme::EcdsaSha2Nistp256,
            ..
        }
        | Key::EcdsaOld {
            keyval,
            scheme: EcdsaScheme::EcdsaSha2Nistp256,
            ..
        } => (&signature::ECDSA_P256_SHA256_ASN1, keyval.public.as_ref()),
        Key::Rsa {
            keyval,
            scheme: RsaScheme::RsassaPssSha256,
            ..
        } => (&signature::RSA_PSS_2048_8192_SHA256, keyval.public.as_ref()),
    };
    signature::UnparsedPublicKey::new(algorithm, public)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new key, written as `dir/k.pem` the way `init` writes one.
    fn key_file(dir: &tempfile::TempDir) -> (SigningKey, std::path::PathBuf) {
        let (key, pem) = SigningKey::generate().unwrap();
        let path = dir.path().join("k.pem");
        crate::durable::write_secret_durably(&path, pem.as_bytes()).unwrap();
        (key, path)
    }

    #[test]
    fn generated_key_round_trips_through_pem_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (key, path) = key_file(&dir);
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        let sig = loaded.sign(b"hello").unwrap();
        assert!(verify(key.public(), b"hello", &sig));
        assert!(!verify(key.public(), b"hellO", &sig));
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
    }

    #[test]
    fn spec_key_id_is_toughs_and_php_tuf_adds_the_hash_algorithms() {
        let (key, _) = SigningKey::generate().unwrap();
        let spec = key_id(key.public(), KeyIdRule::Spec).unwrap();
        assert_eq!(hex::encode(key.public().key_id().unwrap()), spec);
        assert_eq!(
            key.key_id(),
            key_id(key.public(), KeyIdRule::PhpTuf).unwrap()
        );
        assert_ne!(key.key_id(), spec);
        // php-tuf's Key::getComputedKeyId(), by hand, for a fixed key.
        let fixed = public_key(&[0x11; 32]);
        let text = format!(
            "{{\"keyid_hash_algorithms\":[\"sha256\",\"sha512\"],\"keytype\":\"ed25519\",\
             \"keyval\":{{\"public\":\"{}\"}},\"scheme\":\"ed25519\"}}",
            "11".repeat(32)
        );
        let expected = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            text.as_bytes(),
        ));
        assert_eq!(key_id(&fixed, KeyIdRule::PhpTuf).unwrap(), expected);
        let id = hex::decode(&expected).unwrap();
        assert_eq!(KeyIdRule::of(&fixed, &id), Some(KeyIdRule::PhpTuf));
        assert_eq!(KeyIdRule::of(&fixed, b"other"), None);
    }

    #[test]
    fn writes_pkcs8_v1_and_still_reads_v2() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pem) = SigningKey::generate().unwrap();
        let der = pem::parse(&pem).unwrap().into_contents();
        // RFC 8410's v1 layout is exactly 48 bytes: version 0, the OID, the 32-byte seed.
        assert_eq!((der.len(), der[4]), (48, 0), "not PKCS#8 v1");
        let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let path = dir.path().join("v2.pem");
        std::fs::write(
            &path,
            pem::encode(&pem::Pem::new("PRIVATE KEY", v2.as_ref().to_vec())),
        )
        .unwrap();
        assert!(SigningKey::load(&path).is_ok());
    }

    #[test]
    fn public_key_pem_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (key, private) = key_file(&dir);
        let public = dir.path().join("k.pub.pem");
        std::fs::write(&public, public_pem(key.public()).unwrap()).unwrap();
        assert_eq!(&load_public(&public).unwrap(), key.public());
        assert_eq!(&load_public(&private).unwrap(), key.public());
    }

    #[test]
    fn refuses_garbage_with_a_clear_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(
            &path,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let err = SigningKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("PRIVATE KEY"), "{err}");
    }
}
