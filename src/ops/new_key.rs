//! `tuf-signer new-key` and the keys `init` makes: each made where the operator chose
//! ([`Holder`]): a key file, private from its first byte, or a key generated inside a PKCS#11
//! token (not extractable) and a reference file naming it. Nothing is ever replaced.

use std::path::Path;

use crate::durable::{write_durably, write_secret_durably};
use crate::keys::token::{self, TokenUri};
use crate::keys::{self, SigningKey};
use crate::{Error, Result};

/// Where new keys are made: key files (`NAME.pem`), or inside a PKCS#11 token, named by a
/// reference file (`NAME.pkcs11`, see [`token`]).
#[derive(Debug, Clone, Default)]
pub enum Holder {
    /// A PKCS#8 PEM file per key, private from its first byte.
    #[default]
    File,
    /// Keys generated inside this token (not extractable), labelled `PREFIX + name`.
    Token {
        /// The token (its `object=` and `id=` are ignored: each key gets its own).
        uri: TokenUri,
        /// What every key's label starts with (`tuf-`: `tuf-timestamp`).
        label_prefix: String,
    },
}

impl Holder {
    /// Key files, or with `token` (a `pkcs11:` URI) keys in that token labelled
    /// `label_prefix + name`.
    pub fn new(token: Option<&str>, label_prefix: String) -> Result<Holder> {
        Ok(match token {
            Some(uri) => Holder::Token {
                uri: TokenUri::parse(uri)?,
                label_prefix,
            },
            None => Holder::File,
        })
    }

    /// The extension of what names a key this holder made: `pem` or `pkcs11`.
    pub fn extension(&self) -> &'static str {
        match self {
            Holder::File => "pem",
            Holder::Token { .. } => token::REFERENCE_EXTENSION,
        }
    }

    /// Makes a new key called `name` and writes what names it at `path`: the key itself, or
    /// the token reference (private from its first byte, never replacing a file).
    pub fn make(&self, name: &str, path: &Path) -> Result<SigningKey> {
        match self {
            Holder::File => {
                let (key, pem) = SigningKey::generate()?;
                write_secret_durably(path, pem.as_bytes())?;
                Ok(key)
            }
            Holder::Token { uri, label_prefix } => {
                let made = token::create(uri, &format!("{label_prefix}{name}"))?;
                let key = SigningKey::new(Box::new(token::TokenKey::open(&made)?))?;
                write_secret_durably(path, format!("{made}\n").as_bytes())?;
                Ok(key)
            }
        }
    }
}

/// `tuf-signer new-key --out OUT [--token URI]`: one new key (in the token, labelled by the
/// URI's `object=`), its public half as `OUT`'s `NAME.pub.pem` beside it; returns what to tell
/// the operator.
pub fn new_key(out: &Path, token: Option<&str>) -> Result<String> {
    let label = match token {
        Some(text) => TokenUri::parse(text)?.object.ok_or_else(|| {
            Error::Usage(format!(
                "--token {text}: name the new key's label with object=LABEL in the URI"
            ))
        })?,
        None => String::new(),
    };
    let holder = Holder::new(token, label)?;
    let wanted = holder.extension();
    if out.extension().is_none_or(|e| e != wanted) {
        return Err(Error::Usage(format!(
            "--out {}: name it NAME.{wanted}, so that what it holds is plain from its name",
            out.display()
        )));
    }
    let key = holder.make("", out)?;
    let public = out.with_extension("pub.pem");
    let pem = keys::public_pem(key.public()).expect("an ed25519 key");
    write_durably(&public, pem.as_bytes())?;
    Ok(format!(
        "New key {} in {}; its public half is in {}.\nNext: tuf-signer root new --add-key \
         ROLE={}, then README \"Rotating an online key\".\n",
        key.key_id(),
        out.display(),
        public.display(),
        out.display()
    ))
}
