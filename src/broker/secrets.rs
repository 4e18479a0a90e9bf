//! A deployment's broker passwords (`tuf-signer broker-secrets`): one random password per
//! agent, each in a file of that agent's own, and the broker's definitions with their salted
//! hashes.
//!
//! Invariant: the definitions in this repository (`nix/rabbitmq/definitions.json`, baked into
//! the broker image) hold the development passwords, `dev-AGENT`, which anyone can read here;
//! the broker image refuses them unless started as a development set-up (`TUF_BROKER_DEV=1`,
//! which only the DDEV compose file sets; `nix/rabbitmq/entrypoint.sh`). What this writes has
//! the same users, permissions, queues and exchanges, and passwords nobody else has seen: 32
//! random bytes each, hex (nothing to escape in a URL), hashed as RabbitMQ's
//! `rabbit_password_hashing_sha256` does (base64 of a 4-byte salt and the SHA-256 of salt and
//! password).

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::durable::{create_private_dir, write_durably, write_secret_durably};
use crate::{Error, Result};

/// The broker definitions with the development passwords.
pub const DEV_DEFINITIONS: &str = include_str!("../../nix/rabbitmq/definitions.json");

/// RabbitMQ's `rabbit_password_hashing_sha256` of `password` with `salt`.
pub fn rabbit_hash(password: &str, salt: [u8; 4]) -> String {
    let mut salted = salt.to_vec();
    salted.extend_from_slice(password.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &salted);
    let mut out = salt.to_vec();
    out.extend_from_slice(digest.as_ref());
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::Internal("the system's random source failed".into()))?;
    Ok(bytes)
}

/// What [`write`] made.
#[derive(Debug)]
pub struct Written {
    /// Each agent's user and the file holding its password.
    pub passwords: Vec<(String, PathBuf)>,
    /// The broker's `definitions.json`, with the new password hashes.
    pub definitions: PathBuf,
}

/// `template` (broker definitions) with a new password for each user; returns the new
/// definitions and each user's password.
pub fn with_new_passwords(template: &str) -> Result<(serde_json::Value, Vec<(String, String)>)> {
    let mut defs: serde_json::Value = serde_json::from_str(template)
        .map_err(|e| Error::Usage(format!("the broker definitions do not parse: {e}")))?;
    let users = defs["users"]
        .as_array_mut()
        .ok_or_else(|| Error::Usage("the broker definitions list no users".into()))?;
    let mut passwords = Vec::with_capacity(users.len());
    for user in users {
        let name = user["name"]
            .as_str()
            .ok_or_else(|| Error::Usage("a broker user without a name".into()))?
            .to_string();
        let password = hex::encode(random::<32>()?);
        user["password_hash"] = rabbit_hash(&password, random::<4>()?).into();
        user["hashing_algorithm"] = "rabbit_password_hashing_sha256".into();
        passwords.push((name, password));
    }
    Ok((defs, passwords))
}

/// Writes into `out` one password file per broker user (`AGENT.password`, 0600, given to
/// the uid `owners` names for it) and the broker's `definitions.json`. Refuses to replace
/// anything: new passwords are a new deployment's, or a deliberate rotation into an empty
/// folder.
pub fn write(out: &Path, template: &str, owners: &[(String, u32)]) -> Result<Written> {
    let (defs, passwords) = with_new_passwords(template)?;
    create_private_dir(out, if owners.is_empty() { 0o700 } else { 0o711 })?;
    let definitions = out.join("definitions.json");
    if definitions.exists() {
        return Err(Error::Usage(format!(
            "{} exists: broker-secrets never replaces secrets; give it an empty folder",
            definitions.display()
        )));
    }
    let mut written = Written {
        passwords: Vec::new(),
        definitions: definitions.clone(),
    };
    for (user, password) in passwords {
        let file = out.join(format!("{user}.password"));
        write_secret_durably(&file, format!("{password}\n").as_bytes())?;
        if let Some((_, uid)) = owners.iter().find(|(name, _)| *name == user) {
            crate::repository::deployment::give(&file, *uid)?;
        }
        written.passwords.push((user, file));
    }
    let mut bytes = serde_json::to_vec_pretty(&defs).expect("definitions serialise");
    bytes.push(b'\n');
    write_durably(&definitions, &bytes)?;
    Ok(written)
}

impl Written {
    /// What `tuf-signer broker-secrets` prints: where each file goes.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "Wrote {}: mount it over the broker's /etc/rabbitmq/definitions.json (it holds \
             only salted hashes).\n",
            self.definitions.display()
        );
        for (user, file) in &self.passwords {
            out += &format!(
                "  {user:<24} {}: mount it into that agent only, and point AMQP_PASSWORD_FILE \
                 at it (AMQP_URL then names the user without a password)\n",
                file.display()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The development definitions' hashes are of `dev-AGENT` by RabbitMQ's rule: the same
    /// function that hashes new passwords reproduces them.
    #[test]
    fn hashes_as_rabbitmq_does() {
        let defs: serde_json::Value = serde_json::from_str(DEV_DEFINITIONS).unwrap();
        for user in defs["users"].as_array().unwrap() {
            let name = user["name"].as_str().unwrap();
            let stored = user["password_hash"].as_str().unwrap();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(stored)
                .unwrap();
            let salt: [u8; 4] = raw[..4].try_into().unwrap();
            assert_eq!(rabbit_hash(&format!("dev-{name}"), salt), stored, "{name}");
        }
    }

    #[test]
    fn new_passwords_replace_every_development_one() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(&dir.path().join("secrets"), DEV_DEFINITIONS, &[]).unwrap();
        let text = std::fs::read_to_string(&written.definitions).unwrap();
        let dev: serde_json::Value = serde_json::from_str(DEV_DEFINITIONS).unwrap();
        for user in dev["users"].as_array().unwrap() {
            assert!(!text.contains(user["password_hash"].as_str().unwrap()));
        }
        assert_eq!(written.passwords.len(), 4);
        for (_, file) in &written.passwords {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(file).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
            assert_eq!(std::fs::read_to_string(file).unwrap().trim().len(), 64);
        }
        let again = write(&dir.path().join("secrets"), DEV_DEFINITIONS, &[]);
        assert!(again.is_err(), "never replaces secrets");
    }
}
