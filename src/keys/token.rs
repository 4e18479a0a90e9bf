//! Keys held in a PKCS#11 token (an HSM, a cloud KMS front-end, a smart card, SoftHSM2): the
//! private key never leaves the token, and nothing secret is ever in a file of ours.
//!
//! A token key is named by an RFC 7512 `pkcs11:` URI, kept in a *reference file* where a key
//! file would be (`KEYS/timestamp.pkcs11` beside `KEYS/timestamp.pem`'s place), so every
//! command that takes a key file takes a token key too ([`crate::keys::SigningKey::load`]):
//!
//! ```text
//! pkcs11:token=tuf;object=tuf-timestamp;id=%8a%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pkcs11-pin
//! ```
//!
//! The invariants:
//! - The user PIN comes from `pin-source` (a file) or `TUF_PKCS11_PIN`, never from the URI
//!   (`pin-value` is refused) and never from the command line; it is never logged.
//! - Keys made here ([`create`]) are generated inside the token, sensitive and not
//!   extractable.
//! - A key is used only once its public half, read from the token, verifies a signature the
//!   token made with it: a reference naming another key's public half fails at open.
//! - Only ed25519 (`CKK_EC_EDWARDS`, `CKM_EDDSA`) keys sign: php-tuf verifies nothing else.
//! - A token that errors or is gone fails the signature ([`Error::Signing`]): the batch fails
//!   before anything is written and is retried, reopening the token. A mistake the operator
//!   must fix (no module, wrong PIN, no such key) is an [`Error::Key`] naming what to change;
//!   a wrong PIN is never retried, so a token is not locked by retries.
//!
//! One module is loaded and initialised once per process (several roles of the embedded mode
//! may share a token); each key has its own session.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::keys::Sign;
use crate::{Error, Result};

/// What a reference file starts with: a file whose text starts so names a token key.
pub const SCHEME: &str = "pkcs11:";

/// The extension of a reference file: `KEYS/timestamp.pkcs11`.
pub const REFERENCE_EXTENSION: &str = "pkcs11";

/// The environment variable that holds the token's user PIN when the URI has no
/// `pin-source`.
pub const PIN_ENV: &str = "TUF_PKCS11_PIN";

/// The environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "TUF_PKCS11_MODULE";

/// The DER of the ed25519 curve's object identifier (1.3.101.112), as `CKA_EC_PARAMS`.
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// What must be escaped in a URI attribute's value (RFC 7512 §2.3: `pk11-pchar`).
const ESCAPED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A `pkcs11:` URI's attributes that select a module, a token, a key and the PIN (RFC 7512;
/// others, such as `manufacturer`, are refused rather than ignored).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenUri {
    /// `module-path`: the PKCS#11 module (a `.so`); else [`MODULE_ENV`].
    pub module: Option<PathBuf>,
    /// `token`: the token's label.
    pub token: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`: the slot, when no label tells tokens apart.
    pub slot: Option<u64>,
    /// `object`: the key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the key's id (`CKA_ID`), bytes.
    pub id: Option<Vec<u8>>,
    /// `pin-source`: the file holding the user PIN; else [`PIN_ENV`].
    pub pin_source: Option<PathBuf>,
}

impl TokenUri {
    /// Parses a `pkcs11:` URI; `pin-value` and unknown attributes are refused.
    pub fn parse(text: &str) -> Result<TokenUri> {
        let bad = |reason: String| {
            Error::Usage(format!(
                "{text:?}: not a usable pkcs11: URI: {reason}. Example: \
                 pkcs11:token=tuf;object=tuf-timestamp?module-path=/usr/lib/softhsm/\
                 libsofthsm2.so&pin-source=file:/run/secrets/pkcs11-pin"
            ))
        };
        let rest = text
            .trim()
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad(format!("it must start with {SCHEME}")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = TokenUri::default();
        let pairs = path
            .split(';')
            .chain(query.split('&'))
            .filter(|p| !p.is_empty());
        for pair in pairs {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} has no '='")))?;
            uri.set(name, percent_decode_str(value).collect(), &bad)?;
        }
        Ok(uri)
    }

    /// Sets attribute `name` to its decoded `value`; `bad` words the error.
    fn set(&mut self, name: &str, value: Vec<u8>, bad: &dyn Fn(String) -> Error) -> Result<()> {
        let uri = self;
        let text =
            || String::from_utf8(value.clone()).map_err(|_| bad(format!("{name} is not UTF-8")));
        match name {
            "module-path" => uri.module = Some(PathBuf::from(text()?)),
            "token" => uri.token = Some(text()?),
            "serial" => uri.serial = Some(text()?),
            "slot-id" => {
                uri.slot = Some(
                    text()?
                        .parse()
                        .map_err(|_| bad("slot-id is not a number".into()))?,
                );
            }
            "object" => uri.object = Some(text()?),
            "id" => uri.id = Some(value),
            "type" if text()? == "private" => {}
            "pin-source" => {
                let source = text()?;
                let file = source.strip_prefix("file:").unwrap_or(&source);
                uri.pin_source = Some(PathBuf::from(file.trim_start_matches("//")));
            }
            "pin-value" => {
                return Err(bad(format!(
                    "pin-value would put the PIN where anyone reading the URI sees it; put \
                     the PIN in a file readable by this agent only and name it with \
                     pin-source=file:/path, or set {PIN_ENV}"
                )))
            }
            other => {
                return Err(bad(format!(
                    "unknown attribute {other:?} (known: token, serial, slot-id, object, id, \
                     type=private, module-path, pin-source)"
                )))
            }
        }
        Ok(())
    }

    /// The module to load: `module-path`, else [`MODULE_ENV`].
    fn module(&self) -> Result<PathBuf> {
        self.module
            .clone()
            .or_else(|| std::env::var_os(MODULE_ENV).map(PathBuf::from))
            .ok_or_else(|| {
                self.mistake(format!(
                    "names no PKCS#11 module: add module-path=/path/to/module.so to the URI \
                     (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so; OpenSC, for a YubiKey: \
                     /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so) or set {MODULE_ENV}"
                ))
            })
    }

    /// The user PIN: from `pin-source`, else [`PIN_ENV`]; trailing line ends dropped.
    fn pin(&self) -> Result<AuthPin> {
        let pin = match &self.pin_source {
            Some(file) => std::fs::read_to_string(file).map_err(|e| {
                self.mistake(format!(
                    "cannot read the PIN file {} named by pin-source ({e}); mount it into \
                     this agent, readable by its user only",
                    file.display()
                ))
            })?,
            None => std::env::var(PIN_ENV).map_err(|_| {
                self.mistake(format!(
                    "no PIN: add pin-source=file:/path/to/pin-file to the URI, or set {PIN_ENV}"
                ))
            })?,
        };
        Ok(AuthPin::from(
            pin.trim_end_matches(['\r', '\n']).to_string(),
        ))
    }

    /// A mistake in this URI or its set-up that the operator must fix.
    fn mistake(&self, reason: String) -> Error {
        Error::Key {
            path: PathBuf::from(self.to_string()),
            reason,
        }
    }
}

impl fmt::Display for TokenUri {
    /// The URI, with every value escaped; it holds no secret (see [`TokenUri::parse`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let esc = |v: &str| utf8_percent_encode(v, ESCAPED).to_string();
        let mut path = Vec::new();
        if let Some(t) = &self.token {
            path.push(format!("token={}", esc(t).replace('/', "%2F")));
        }
        if let Some(s) = &self.serial {
            path.push(format!("serial={}", esc(s).replace('/', "%2F")));
        }
        if let Some(s) = self.slot {
            path.push(format!("slot-id={s}"));
        }
        if let Some(o) = &self.object {
            path.push(format!("object={}", esc(o).replace('/', "%2F")));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            path.push(format!("id={hex}"));
        }
        let mut query = Vec::new();
        if let Some(m) = &self.module {
            query.push(format!("module-path={}", esc(&m.to_string_lossy())));
        }
        if let Some(p) = &self.pin_source {
            query.push(format!("pin-source=file:{}", esc(&p.to_string_lossy())));
        }
        write!(f, "{SCHEME}{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for TokenUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenUri({self})")
    }
}

/// An ed25519 key in a token: signs through its own session.
pub struct TokenKey {
    session: Mutex<Session>,
    key: ObjectHandle,
    public: Vec<u8>,
    uri: TokenUri,
    /// The module, kept loaded while the key is (dropped after the session).
    _module: Arc<Pkcs11>,
}

impl TokenKey {
    /// Opens the key `uri` names: loads its module, finds its token, logs in with the PIN,
    /// finds exactly one ed25519 private key and its public half, and checks the two belong
    /// together by a signature.
    pub fn open(uri: &TokenUri) -> Result<TokenKey> {
        let (session, module) = login(uri, false)?;
        let key = only_key(uri, &session)?;
        let public = public_half(uri, &session, key)?;
        let token = TokenKey {
            session: Mutex::new(session),
            key,
            public,
            uri: uri.clone(),
            _module: module,
        };
        token.check_pair()?;
        Ok(token)
    }

    /// The URI this key was opened from.
    pub fn uri(&self) -> &TokenUri {
        &self.uri
    }

    fn check_pair(&self) -> Result<()> {
        const PROBE: &[u8] = b"package-signing: does this token key match its public half?";
        let sig = self.sign(PROBE)?;
        if crate::keys::verify(&crate::keys::public_key(&self.public), PROBE, &sig) {
            return Ok(());
        }
        Err(self.uri.mistake(
            "its public key object does not verify what its private key signs: they are not \
             one pair; add id= to the URI to pick the pair"
                .into(),
        ))
    }
}

impl Sign for TokenKey {
    fn public_key(&self) -> Vec<u8> {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = session.sign(&mechanism, self.key, message).map_err(|e| {
            Error::Signing(format!(
                "the token key {} could not sign ({e}); the batch is retried and the token \
                 reopened",
                self.uri
            ))
        })?;
        if sig.len() != 64 {
            return Err(Error::Signing(format!(
                "the token key {} returned a {}-byte signature, not ed25519's 64",
                self.uri,
                sig.len()
            )));
        }
        Ok(sig)
    }
}

/// Makes a new ed25519 key pair inside the token `uri` names, labelled `label`, with a random
/// id: sensitive and not extractable, so its private half never leaves the token. Refuses a
/// label already used by a key on the token. Returns the URI naming it (label and id).
pub fn create(uri: &TokenUri, label: &str) -> Result<TokenUri> {
    let (session, _module) = login(uri, true)?;
    let taken = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(|e| device(uri, "look for existing keys", &e))?;
    if !taken.is_empty() {
        return Err(uri.mistake(format!(
            "already holds an object labelled {label:?}; init and new-key never reuse a key: \
             choose another label (the URI's object=) or remove the old key"
        )));
    }
    let mut id = vec![0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Internal("no randomness".into()))?;
    let common = [
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut public = common.to_vec();
    public.extend([
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_OID.to_vec()),
    ]);
    let mut private = common.to_vec();
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ]);
    session
        .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
        .map_err(|e| {
            uri.mistake(format!(
                "could not make an ed25519 key pair in the token ({e}); the token must support \
                 CKM_EC_EDWARDS_KEY_PAIR_GEN (SoftHSM2 2.6 does, built with OpenSSL 1.1.1 or \
                 later)"
            ))
        })?;
    Ok(TokenUri {
        object: Some(label.into()),
        id: Some(id),
        ..uri.clone()
    })
}

/// The modules this process has loaded, each initialised once; a key holds its module's
/// `Arc`, so that one no key uses can be opened afresh ([`rescan`]).
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();

fn modules() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<Pkcs11>>> {
    MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process's one context per module, initialised once.
fn module(uri: &TokenUri) -> Result<Arc<Pkcs11>> {
    let path = uri.module()?;
    let mut modules = modules();
    if let Some(module) = modules.get(&path) {
        return Ok(module.clone());
    }
    let module = Pkcs11::new(&path).map_err(|e| {
        uri.mistake(format!(
            "cannot load the PKCS#11 module {} ({e}); install it, or mount it into this agent \
             at that path",
            path.display()
        ))
    })?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(device(uri, "initialise the module", &e)),
    }
    let module = Arc::new(module);
    modules.insert(path, module.clone());
    Ok(module)
}

/// The module `uri` names finalised and initialised again, when no key of this process uses
/// it: a module may list its tokens only as it is initialised (SoftHSM2 does), so a token
/// plugged in since is then seen. `None` while a key still uses it.
fn rescan(uri: &TokenUri) -> Result<Option<Arc<Pkcs11>>> {
    let path = uri.module()?;
    {
        let mut modules = modules();
        if modules.get(&path).is_none_or(|m| Arc::strong_count(m) > 1) {
            return Ok(None);
        }
        if let Some(Ok(old)) = modules.remove(&path).map(Arc::try_unwrap) {
            let _ = old.finalize();
        }
    }
    module(uri).map(Some)
}

/// The slot holding the token `uri` names: exactly one must match.
fn slot(uri: &TokenUri, module: &Pkcs11) -> Result<Slot> {
    let slots = module
        .get_slots_with_token()
        .map_err(|e| device(uri, "list its slots", &e))?;
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for slot in slots {
        // A token going away as it is listed (or another one failing) does not hide this one;
        // one being written by another process as it is read is read again.
        let read = |_| {
            let info = module.get_token_info(slot);
            if info.is_err() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            info.ok()
        };
        let Some(info) = (0..3).find_map(read) else {
            seen.push(format!("an unreadable token (slot-id {})", slot.id()));
            continue;
        };
        let label = info.label().trim_end().to_string();
        let serial = info.serial_number().trim_end().to_string();
        let fits = uri.token.as_ref().is_none_or(|t| *t == label)
            && uri.serial.as_ref().is_none_or(|s| *s == serial)
            && uri.slot.is_none_or(|s| s == slot.id());
        if fits {
            found.push(slot);
        }
        seen.push(format!(
            "{label:?} (slot-id {}, serial {serial})",
            slot.id()
        ));
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::Signing(format!(
            "no token matching {uri} is present (tokens seen: {}); plug it in, or fix token= in \
             the URI",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ))),
        _ => Err(uri.mistake(format!(
            "matches {} tokens ({}): add token=, serial= or slot-id= to pick one",
            found.len(),
            seen.join(", ")
        ))),
    }
}

/// A session on the token `uri` names, logged in as its user.
fn login(uri: &TokenUri, read_write: bool) -> Result<(Session, Arc<Pkcs11>)> {
    let mut module = module(uri)?;
    let slot = match slot(uri, &module) {
        Err(Error::Signing(reason)) => {
            drop(module);
            let Some(fresh) = rescan(uri)? else {
                return Err(Error::Signing(reason));
            };
            module = fresh;
            slot(uri, &module)?
        }
        found => found?,
    };
    let session = if read_write {
        module.open_rw_session(slot)
    } else {
        module.open_ro_session(slot)
    }
    .map_err(|e| device(uri, "open a session", &e))?;
    match session.login(UserType::User, Some(&uri.pin()?)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok((session, module)),
        Err(
            e @ P11Error::Pkcs11(
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::UserPinNotInitialized,
                _,
            ),
        ) => Err(uri.mistake(format!(
            "the token refused the PIN ({e}); fix the PIN file or {PIN_ENV} (not retried, so \
             that retries do not lock the token)"
        ))),
        Err(e) => Err(device(uri, "log in", &e)),
    }
}

/// The one ed25519 private key `uri` names on the token.
fn only_key(uri: &TokenUri, session: &Session) -> Result<ObjectHandle> {
    if uri.object.is_none() && uri.id.is_none() {
        return Err(uri.mistake(
            "names no key: add object=LABEL (or id=) to the URI; `tuf-signer new-key --token` \
             prints the URI of the key it makes"
                .into(),
        ));
    }
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    template.extend(selectors(uri));
    let found = session
        .find_objects(&template)
        .map_err(|e| device(uri, "look for the key", &e))?;
    let key = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(uri.mistake(
                "the token holds no private key with this label and id; check object= and id= \
                 (`pkcs11-tool --module MODULE --login --list-objects` lists them)"
                    .into(),
            ))
        }
        many => {
            return Err(uri.mistake(format!(
                "{} private keys match; add id= to the URI to name one",
                many.len()
            )))
        }
    };
    let kind = session
        .get_attributes(key, &[AttributeType::KeyType])
        .map_err(|e| device(uri, "read the key's type", &e))?;
    match kind.as_slice() {
        [Attribute::KeyType(t)] if *t == KeyType::EC_EDWARDS => Ok(key),
        other => Err(uri.mistake(format!(
            "is not an ed25519 key ({other:?}); only ed25519 keys sign this repository (php-tuf \
             verifies nothing else)"
        ))),
    }
}

/// What picks the key: its label and id, as the URI gives them.
fn selectors(uri: &TokenUri) -> Vec<Attribute> {
    let mut template = Vec::new();
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

/// The raw 32-byte public key of `key`'s pair: the public key object with the same id (or
/// label), `CKA_EC_POINT` read as a DER OCTET STRING or raw bytes.
fn public_half(uri: &TokenUri, session: &Session, key: ObjectHandle) -> Result<Vec<u8>> {
    let id = session
        .get_attributes(key, &[AttributeType::Id])
        .map_err(|e| device(uri, "read the key's id", &e))?;
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    match id.as_slice() {
        [Attribute::Id(id)] if !id.is_empty() => template.push(Attribute::Id(id.clone())),
        _ => template.extend(selectors(uri)),
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| device(uri, "look for the public key", &e))?;
    let [public] = found.as_slice() else {
        return Err(uri.mistake(format!(
            "has {} public key objects for this key, not one; the signer reads the public half \
             from the token",
            found.len()
        )));
    };
    let point = session
        .get_attributes(*public, &[AttributeType::EcPoint])
        .map_err(|e| device(uri, "read the public key", &e))?;
    let raw = match point.as_slice() {
        [Attribute::EcPoint(p)] if p.len() == 34 && p[..2] == [0x04, 0x20] => p[2..].to_vec(),
        [Attribute::EcPoint(p)] if p.len() == 32 => p.clone(),
        _ => {
            return Err(uri.mistake(
                "its public key is not a 32-byte ed25519 point; only ed25519 keys sign this \
                 repository"
                    .into(),
            ))
        }
    };
    Ok(raw)
}

/// A token or module failure that another try may get past (a token pulled out, a device
/// error): the batch fails and is retried.
fn device(uri: &TokenUri, doing: &str, e: &P11Error) -> Error {
    Error::Signing(format!("the token of {uri} failed to {doing}: {e}"))
}

/// Whether `bytes` (a key file's contents) are a token reference rather than a key.
pub fn is_reference(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(SCHEME.as_bytes())
}

/// Reads a reference file's URI.
pub fn read_reference(path: &Path, bytes: &[u8]) -> Result<TokenUri> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Key {
        path: path.into(),
        reason: "starts with pkcs11: but is not UTF-8 text".into(),
    })?;
    TokenUri::parse(text.trim()).map_err(|e| Error::Key {
        path: path.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_round_trips_and_its_values_are_unescaped() {
        let text = "pkcs11:token=my%20tuf;object=tuf-timestamp;id=%8a%01?module-path=/usr/lib/\
                    softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin";
        let uri = TokenUri::parse(text).unwrap();
        assert_eq!(uri.token.as_deref(), Some("my tuf"));
        assert_eq!(uri.object.as_deref(), Some("tuf-timestamp"));
        assert_eq!(uri.id.as_deref(), Some(&[0x8a, 0x01][..]));
        assert_eq!(
            uri.module.as_deref(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(
            uri.pin_source.as_deref(),
            Some(Path::new("/run/secrets/pin"))
        );
        assert_eq!(TokenUri::parse(&uri.to_string()).unwrap(), uri);
    }

    #[test]
    fn a_pin_in_the_uri_and_unknown_attributes_are_refused() {
        let err = TokenUri::parse("pkcs11:token=t?pin-value=1234")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pin-source"), "{err}");
        let err = TokenUri::parse("pkcs11:token=t;manufacturer=x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown attribute"), "{err}");
        assert!(TokenUri::parse("file:/x").is_err());
    }

    #[test]
    fn a_missing_module_is_a_mistake_that_names_the_fix() {
        let uri =
            TokenUri::parse("pkcs11:token=t;object=k?module-path=/nonexistent/p11.so").unwrap();
        let err = TokenKey::open(&uri).err().unwrap();
        assert!(err.restart_cannot_fix(), "{err}");
        assert!(
            err.to_string().contains("cannot load the PKCS#11 module"),
            "{err}"
        );
    }
}
