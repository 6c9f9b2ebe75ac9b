//! Records encrypted at rest: envelope encryption. Each stored record is sealed with
//! AES-256-GCM under a data key, with a random 96-bit nonce and the event's id and the key's
//! id as associated data (a record moved to another row, or relabelled with another key, does
//! not open). Data keys live in PostgreSQL (`data_keys`) only wrapped by a master key: from
//! the local keyring file (`orgtrail-aggregator keys init`) or AWS KMS ([`crate::kms`]), never
//! in the database.
//!
//! Stored form of a record: `[1][nonce: 12][ciphertext][tag: 16]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kms::{self, KmsError, KmsMaster};

const FORMAT_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// What sealing adds to a record: the format byte, the nonce and the tag.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// The associated data of a wrapped data key.
const WRAP_CONTEXT: &[u8] = b"orgtrail data key v1";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read the keyring {path}: {source}; create one with `orgtrail-aggregator keys init --keyring {path}`")]
    KeyringUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keyring {path} is readable by others (mode {mode:o}): `chmod 600 {path}`")]
    KeyringExposed { path: PathBuf, mode: u32 },
    #[error("the keyring {path} is not a valid orgtrail keyring: {reason}")]
    KeyringInvalid { path: PathBuf, reason: String },
    #[error("{0} exists already: an existing keyring is never overwritten")]
    KeyringExists(PathBuf),
    #[error("cannot write the keyring {path}: {source}")]
    KeyringWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data key {key_id} is wrapped by master key {master:?}, which the keyring does not hold: the keyring is not the one this database was encrypted with")]
    MissingMasterKey { key_id: i32, master: String },
    #[error("data key {key_id} does not unwrap with master key {master:?}: the keyring holds a different key under that id")]
    WrongMasterKey { key_id: i32, master: String },
    #[error("data key {key_id} is wrapped by {master}, and {missing} is not set: {hint}")]
    UnconfiguredMaster {
        key_id: i32,
        master: String,
        missing: &'static str,
        hint: &'static str,
    },
    #[error(transparent)]
    Kms(KmsError),
    #[error("no data key {0} is loaded")]
    UnknownDataKey(i32),
    #[error("the record of event {0} does not decrypt: it was altered, moved, or sealed with another key")]
    Tampered(Uuid),
    #[error("the system random generator failed")]
    Random,
}

impl From<KmsError> for CryptoError {
    fn from(error: KmsError) -> CryptoError {
        match error {
            KmsError::WrongKey { key_id, arn } => CryptoError::WrongMasterKey {
                key_id,
                master: format!("{}{arn}", kms::WRAPPED_BY_PREFIX),
            },
            other => CryptoError::Kms(other),
        }
    }
}

/// The record cipher: every data key this replica has unwrapped, and the one new records use.
pub struct RecordCipher {
    keys: RwLock<HashMap<i32, Arc<LessSafeKey>>>,
    active: AtomicI32,
    random: SystemRandom,
}

impl Default for RecordCipher {
    fn default() -> Self {
        RecordCipher::new()
    }
}

impl RecordCipher {
    pub fn new() -> RecordCipher {
        RecordCipher {
            keys: RwLock::new(HashMap::new()),
            active: AtomicI32::new(0),
            random: SystemRandom::new(),
        }
    }

    pub fn install(&self, key_id: i32, key: &[u8; 32]) {
        let key = match UnboundKey::new(&AES_256_GCM, key) {
            Ok(key) => Arc::new(LessSafeKey::new(key)),
            // 32 bytes is AES-256's key length: this cannot fail.
            Err(_) => return,
        };
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key_id, key);
        }
    }

    pub fn holds(&self, key_id: i32) -> bool {
        self.keys
            .read()
            .map(|keys| keys.contains_key(&key_id))
            .unwrap_or(false)
    }

    pub fn set_active(&self, key_id: i32) {
        self.active.store(key_id, Ordering::SeqCst);
    }

    pub fn active(&self) -> i32 {
        self.active.load(Ordering::SeqCst)
    }

    fn key(&self, key_id: i32) -> Result<Arc<LessSafeKey>, CryptoError> {
        self.keys
            .read()
            .ok()
            .and_then(|keys| keys.get(&key_id).cloned())
            .ok_or(CryptoError::UnknownDataKey(key_id))
    }

    /// Seals a record of `event_id` with the active key; returns the key's id and the sealed
    /// bytes.
    pub fn seal(&self, event_id: Uuid, plaintext: &[u8]) -> Result<(i32, Vec<u8>), CryptoError> {
        let key_id = self.active();
        let key = self.key(key_id)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(event_id, key_id)),
            &mut body,
        )
        .map_err(|_| CryptoError::Tampered(event_id))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + body.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok((key_id, sealed))
    }

    /// Opens a record sealed by [`RecordCipher::seal`].
    pub fn open(&self, key_id: i32, event_id: Uuid, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.key(key_id)?;
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
            return Err(CryptoError::Tampered(event_id));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plaintext = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(event_id, key_id)),
                &mut body,
            )
            .map_err(|_| CryptoError::Tampered(event_id))?;
        let length = plaintext.len();
        body.truncate(length);
        Ok(body)
    }
}

fn associated_data(event_id: Uuid, key_id: i32) -> [u8; 20] {
    let mut data = [0u8; 20];
    data[..16].copy_from_slice(event_id.as_bytes());
    data[16..].copy_from_slice(&key_id.to_be_bytes());
    data
}

/// Where the master keys are: a keyring, or AWS KMS (with a keyring beside it while moving from
/// the keyring to KMS: new data keys are made by KMS, the keyring still opens the ones it
/// wrapped).
#[derive(Debug)]
pub enum MasterKeys {
    Keyring(Keyring),
    Kms {
        kms: KmsMaster,
        keyring: Option<Keyring>,
    },
}

impl MasterKeys {
    /// Where new data keys are wrapped, for logs.
    pub fn describe(&self) -> String {
        match self {
            MasterKeys::Keyring(keyring) => format!("the keyring {}", keyring.path.display()),
            MasterKeys::Kms { kms, keyring: None } => format!("AWS KMS key {}", kms.key_id()),
            MasterKeys::Kms {
                kms,
                keyring: Some(keyring),
            } => format!(
                "AWS KMS key {} (the keyring {} opens older data keys)",
                kms.key_id(),
                keyring.path.display()
            ),
        }
    }

    fn keyring_part(&self) -> Option<&Keyring> {
        match self {
            MasterKeys::Keyring(keyring) => Some(keyring),
            MasterKeys::Kms { keyring, .. } => keyring.as_ref(),
        }
    }

    /// A new data key: its plaintext, its wrapped form, and the name of its master key.
    pub async fn new_data_key(&self) -> Result<([u8; 32], Vec<u8>, String), CryptoError> {
        match self {
            MasterKeys::Kms { kms, .. } => kms.generate_data_key().await.map_err(CryptoError::from),
            MasterKeys::Keyring(keyring) => {
                let data_key = random_key()?;
                let (wrapped, master) = keyring.wrap(&data_key)?;
                Ok((data_key, wrapped, master))
            }
        }
    }

    pub async fn unwrap(
        &self,
        key_id: i32,
        wrapped: &[u8],
        master: &str,
    ) -> Result<[u8; 32], CryptoError> {
        if let Some(arn) = master.strip_prefix(kms::WRAPPED_BY_PREFIX) {
            return match self {
                MasterKeys::Kms { kms, .. } => {
                    kms.decrypt(key_id, wrapped, arn).await.map_err(CryptoError::from)
                }
                MasterKeys::Keyring(_) => Err(CryptoError::UnconfiguredMaster {
                    key_id,
                    master: format!("the AWS KMS key {arn}"),
                    missing: "encryption.kms_key_id",
                    hint: "give the KMS key new data keys are made under (and its kms_region); older data keys are opened with the key that wrapped them",
                }),
            };
        }
        match self.keyring_part() {
            Some(keyring) => keyring.unwrap(key_id, wrapped, master),
            None => Err(CryptoError::UnconfiguredMaster {
                key_id,
                master: format!("the keyring master key {master:?}"),
                missing: "encryption.keyring",
                hint: "give the keyring this database was encrypted with (beside the KMS key, until `orgtrail keys rotate --reencrypt` has moved every row to a KMS data key)",
            }),
        }
    }
}

/// A fresh random 256-bit key.
pub fn random_key() -> Result<[u8; 32], CryptoError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| CryptoError::Random)?;
    Ok(key)
}

/// The keyring file: master keys by id, one of them primary (new data keys are wrapped by it).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    primary: String,
    keys: Vec<KeyringEntry>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringEntry {
    id: String,
    created_at: String,
    /// 32 bytes, base64.
    key: String,
}

/// The master keys of a keyring file.
pub struct Keyring {
    path: PathBuf,
    primary: String,
    keys: HashMap<String, LessSafeKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("path", &self.path)
            .field("primary", &self.primary)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Keyring {
    /// Creates a keyring with one master key, readable by its owner only; never overwrites.
    pub fn init(path: &Path) -> Result<String, CryptoError> {
        let entry = new_entry()?;
        let id = entry.id.clone();
        let file = KeyringFile {
            version: 1,
            primary: id.clone(),
            keys: vec![entry],
        };
        write_keyring(path, &file, true)?;
        Ok(id)
    }

    /// Adds a master key and makes it primary (data keys made from now on are wrapped by it;
    /// the older master keys stay, for the data keys they wrapped).
    pub fn add_master_key(path: &Path) -> Result<String, CryptoError> {
        let mut file = read_keyring_file(path)?;
        let entry = new_entry()?;
        let id = entry.id.clone();
        file.primary = id.clone();
        file.keys.push(entry);
        write_keyring(path, &file, false)?;
        Ok(id)
    }

    pub fn load(path: &Path) -> Result<Keyring, CryptoError> {
        Keyring::from_file(path, read_keyring_file(path)?)
    }

    /// Copies a keyring from where it may not be private (a Kubernetes Secret volume, whose
    /// files are group-readable under `fsGroup`) to `destination`, readable by its owner only,
    /// after checking it is a valid keyring. Returns its primary master key's id.
    pub fn install(source: &Path, destination: &Path) -> Result<String, CryptoError> {
        let file = parse_keyring_file(source)?;
        let primary = Keyring::from_file(source, file.clone())?.primary;
        write_keyring(destination, &file, false)?;
        Ok(primary)
    }

    fn from_file(path: &Path, file: KeyringFile) -> Result<Keyring, CryptoError> {
        let invalid = |reason: String| CryptoError::KeyringInvalid {
            path: path.to_path_buf(),
            reason,
        };
        if file.version != 1 {
            return Err(invalid(format!("version {} is not 1", file.version)));
        }
        let mut keys = HashMap::new();
        for entry in &file.keys {
            let bytes = STANDARD
                .decode(entry.key.trim())
                .map_err(|_| invalid(format!("key {:?} is not base64", entry.id)))?;
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| invalid(format!("key {:?} is not 32 bytes", entry.id)))?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| invalid(format!("key {:?} is not an AES-256 key", entry.id)))?;
            if keys
                .insert(entry.id.clone(), LessSafeKey::new(key))
                .is_some()
            {
                return Err(invalid(format!("key id {:?} appears twice", entry.id)));
            }
        }
        if !keys.contains_key(&file.primary) {
            return Err(invalid(format!(
                "the primary key {:?} is not among its keys",
                file.primary
            )));
        }
        Ok(Keyring {
            path: path.to_path_buf(),
            primary: file.primary,
            keys,
        })
    }

    pub fn primary(&self) -> &str {
        &self.primary
    }

    /// Wraps a data key with the primary master key: `nonce ‖ ciphertext ‖ tag`.
    pub fn wrap(&self, data_key: &[u8; 32]) -> Result<(Vec<u8>, String), CryptoError> {
        let key = self
            .keys
            .get(&self.primary)
            .ok_or_else(|| CryptoError::KeyringInvalid {
                path: self.path.clone(),
                reason: "no primary key".into(),
            })?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut body = data_key.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(WRAP_CONTEXT),
            &mut body,
        )
        .map_err(|_| CryptoError::Random)?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&body);
        Ok((wrapped, self.primary.clone()))
    }

    pub fn unwrap(
        &self,
        key_id: i32,
        wrapped: &[u8],
        master: &str,
    ) -> Result<[u8; 32], CryptoError> {
        let key = self
            .keys
            .get(master)
            .ok_or_else(|| CryptoError::MissingMasterKey {
                key_id,
                master: master.to_string(),
            })?;
        let wrong = || CryptoError::WrongMasterKey {
            key_id,
            master: master.to_string(),
        };
        if wrapped.len() != NONCE_LEN + 32 + TAG_LEN {
            return Err(wrong());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
        let mut body = wrapped[NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(WRAP_CONTEXT),
                &mut body,
            )
            .map_err(|_| wrong())?;
        plain.try_into().map_err(|_| wrong())
    }
}

fn new_entry() -> Result<KeyringEntry, CryptoError> {
    let key = random_key()?;
    let suffix: [u8; 4] = {
        let mut bytes = [0u8; 4];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CryptoError::Random)?;
        bytes
    };
    let now = chrono::Utc::now();
    Ok(KeyringEntry {
        id: format!(
            "mk-{}-{}",
            now.format("%Y%m%d"),
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        created_at: now.to_rfc3339(),
        key: STANDARD.encode(key),
    })
}

fn read_keyring_file(path: &Path) -> Result<KeyringFile, CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |source| CryptoError::KeyringUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyringExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    parse_keyring_file(path)
}

/// Reads and parses a keyring file, whoever may read it.
fn parse_keyring_file(path: &Path) -> Result<KeyringFile, CryptoError> {
    let text = std::fs::read_to_string(path).map_err(|source| CryptoError::KeyringUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|error| CryptoError::KeyringInvalid {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

/// Writes the keyring (0600) through a temporary file and a rename, so a crash never leaves
/// half a keyring.
fn write_keyring(path: &Path, file: &KeyringFile, create_new: bool) -> Result<(), CryptoError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if create_new && path.exists() {
        return Err(CryptoError::KeyringExists(path.to_path_buf()));
    }
    let write_error = |source| CryptoError::KeyringWrite {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(file).map_err(|error| CryptoError::KeyringInvalid {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let temporary = path.with_extension("tmp");
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(write_error)?;
    output.write_all(text.as_bytes()).map_err(write_error)?;
    output.sync_all().map_err(write_error)?;
    drop(output);
    std::fs::rename(&temporary, path).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_only_for_its_row_and_key() {
        let cipher = RecordCipher::new();
        cipher.install(1, &[7u8; 32]);
        cipher.install(2, &[9u8; 32]);
        cipher.set_active(1);
        let event = Uuid::new_v4();
        let record = br#"{"eventID":"x","requestParameters":{"secret":"value"}}"#;
        let (key_id, sealed) = cipher.seal(event, record).unwrap();
        assert_eq!(key_id, 1);
        assert!(!sealed.windows(6).any(|window| window == b"secret"));
        assert_eq!(cipher.open(1, event, &sealed).unwrap(), record);
        // Same plaintext twice: different nonces, different bytes.
        assert_ne!(cipher.seal(event, record).unwrap().1, sealed);
        // Another row, another key label, a flipped bit: refused.
        assert!(matches!(
            cipher.open(1, Uuid::new_v4(), &sealed),
            Err(CryptoError::Tampered(_))
        ));
        assert!(cipher.open(2, event, &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(cipher.open(1, event, &flipped).is_err());
        assert!(cipher.open(1, event, &sealed[..10]).is_err());
        assert!(matches!(
            cipher.open(3, event, &sealed),
            Err(CryptoError::UnknownDataKey(3))
        ));
    }

    #[test]
    fn a_keyring_wraps_data_keys_and_refuses_what_it_did_not_wrap() {
        let dir = std::env::temp_dir().join(format!("orgtrail-keyring-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keyring.json");
        let first = Keyring::init(&path).unwrap();
        assert!(matches!(
            Keyring::init(&path),
            Err(CryptoError::KeyringExists(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let keyring = Keyring::load(&path).unwrap();
        let data_key = random_key().unwrap();
        let (wrapped, master) = keyring.wrap(&data_key).unwrap();
        assert_eq!(master, first);
        assert_eq!(keyring.unwrap(1, &wrapped, &master).unwrap(), data_key);

        // A new primary: old data keys still unwrap, new ones use the new master key.
        let second = Keyring::add_master_key(&path).unwrap();
        let keyring = Keyring::load(&path).unwrap();
        assert_eq!(keyring.primary(), second);
        assert_eq!(keyring.unwrap(1, &wrapped, &first).unwrap(), data_key);

        // Another keyring: a clear refusal, never a wrong key.
        let other_path = dir.join("other.json");
        Keyring::init(&other_path).unwrap();
        let other = Keyring::load(&other_path).unwrap();
        assert!(matches!(
            other.unwrap(1, &wrapped, &first),
            Err(CryptoError::MissingMasterKey { .. })
        ));

        // Exposed keyrings are refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keyring::load(&path),
            Err(CryptoError::KeyringExposed { .. })
        ));

        // Installed from there (as from a Secret volume): a private copy, the same keys; an
        // invalid source installs nothing.
        let installed = dir.join("installed.json");
        assert_eq!(Keyring::install(&path, &installed).unwrap(), second);
        assert_eq!(
            std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let copy = Keyring::load(&installed).unwrap();
        assert_eq!(copy.unwrap(1, &wrapped, &first).unwrap(), data_key);
        let broken = dir.join("broken.json");
        std::fs::write(
            &broken,
            "{\"version\": 1, \"primary\": \"x\", \"keys\": []}",
        )
        .unwrap();
        let refused = dir.join("refused.json");
        assert!(matches!(
            Keyring::install(&broken, &refused),
            Err(CryptoError::KeyringInvalid { .. })
        ));
        assert!(!refused.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
