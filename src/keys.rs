//! ed25519 keys: one PKCS#8 PEM file per role, so each signer's container mounts only its own.
//!
//! We accept what `openssl genpkey -algorithm ED25519` writes (PKCS#8 v1 PEM) as well as
//! PKCS#8 v2 and raw DER. Private key bytes never leave this module: `Debug` prints the key id.

use std::fmt;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::{Ed25519Key, Ed25519Scheme, Key};

use crate::repository::layout::write_durably;
use crate::{canonical, Error, Result};

/// A role's private signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: Key,
    key_id: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id)
    }
}

impl SigningKey {
    /// A new random key, and its PKCS#8 PEM to store.
    pub fn generate() -> Result<(SigningKey, String)> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| Error::Key {
            path: "<new key>".into(),
            reason: "the system random generator failed".into(),
        })?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        Ok((Self::from_der(der.as_ref(), Path::new("<new key>"))?, pem))
    }

    /// Loads a key file (PKCS#8, PEM or DER).
    pub fn load(path: &Path) -> Result<SigningKey> {
        let bytes = std::fs::read(path).map_err(|source| Error::Key {
            path: path.into(),
            reason: format!(
                "cannot read it ({source}); pass the key file `tuf-signer init` wrote for this role"
            ),
        })?;
        let der = if bytes.starts_with(b"-----BEGIN") {
            let parsed = pem::parse(&bytes).map_err(|e| Error::Key {
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
            bytes
        };
        Self::from_der(&der, path)
    }

    fn from_der(der: &[u8], path: &Path) -> Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| Error::Key {
            path: path.into(),
            reason: format!("not an ed25519 PKCS#8 private key ({e}); only ed25519 is supported"),
        })?;
        let public = public_key(pair.public_key().as_ref());
        let key_id = key_id(&public)?;
        Ok(SigningKey {
            pair,
            public,
            key_id,
        })
    }

    /// Writes the PEM to `path`, readable by its owner only.
    pub fn save_pem(pem: &str, path: &Path) -> Result<()> {
        write_durably(path, pem.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(Error::io("cannot restrict key file permissions", path))?;
        }
        Ok(())
    }

    pub fn public(&self) -> &Key {
        &self.public
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
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
            let der = parsed.contents();
            return match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
                Some(raw) if raw.len() == 32 => Ok(public_key(raw)),
                _ => Err(Error::Key {
                    path: path.into(),
                    reason: "not an ed25519 public key; only ed25519 is supported (make one \
                             with `openssl genpkey -algorithm ED25519`)"
                        .into(),
                }),
            };
        }
    }
    Ok(SigningKey::load(path)?.public().clone())
}

/// A public key as PEM (SubjectPublicKeyInfo), the form keyholders exchange.
pub fn public_pem(key: &Key) -> Option<String> {
    let Key::Ed25519 { keyval, .. } = key else {
        return None;
    };
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(keyval.public.as_ref());
    Some(pem::encode(&pem::Pem::new("PUBLIC KEY", der)))
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

/// The key id: hex SHA-256 of the key's canonical JSON (TUF 1.0, as python-tuf computes it).
pub fn key_id(key: &Key) -> Result<String> {
    let bytes = canonical::to_vec(key, "public key")?;
    Ok(hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref(),
    ))
}

/// Checks an ed25519 signature. Any other key type is refused: php-tuf accepts ed25519 only.
pub fn verify(key: &Key, message: &[u8], sig: &[u8]) -> bool {
    match key {
        Key::Ed25519 { keyval, .. } => {
            signature::UnparsedPublicKey::new(&signature::ED25519, keyval.public.as_ref())
                .verify(message, sig)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pem_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (key, pem) = SigningKey::generate().unwrap();
        let path = dir.path().join("k.pem");
        SigningKey::save_pem(&pem, &path).unwrap();
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        let sig = loaded.sign(b"hello");
        assert!(verify(key.public(), b"hello", &sig));
        assert!(!verify(key.public(), b"hellO", &sig));
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
    }

    #[test]
    fn key_id_matches_toughs() {
        let (key, _) = SigningKey::generate().unwrap();
        assert_eq!(hex::encode(key.public().key_id().unwrap()), key.key_id());
    }

    #[test]
    fn public_key_pem_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (key, pem) = SigningKey::generate().unwrap();
        let private = dir.path().join("k.pem");
        SigningKey::save_pem(&pem, &private).unwrap();
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
