//! Optional encryption at rest of biometric files (templates, enrolment crops, punch
//! thumbnails), keyed from a file the operator gives by path (systemd credentials).
//!
//! ChaCha20-Poly1305 through `ring` (already linked for TLS): constant-time and fast
//! without AES instructions, which the Raspberry Pi 4's Cortex-A72 lacks. A sealed file is
//! `MAGIC ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; the file's name is the associated data,
//! so a sealed template moved to another user's file name no longer opens.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// First bytes of a sealed file (never the start of a PNG, JPEG or `.npy`).
const MAGIC: &[u8; 8] = b"ATSEAL1\0";
/// Key length in bytes (256 bits).
pub(crate) const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("key file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("encrypted, but no storage.encryption_key_file is configured")]
    NoKey,
    #[error("cannot be decrypted with the configured key (wrong key, or the file was altered)")]
    Tampered,
    #[error("system random source failed")]
    Random,
    #[error(
        "not encrypted, though a storage key is configured: refused (files stored before \
         encryption was turned on are sealed once by `attendanced seal-store`)"
    )]
    Unsealed,
}

/// Seals and opens biometric files; without a key it passes bytes through unchanged.
/// Keys being rotated out still open files (which [`Sealer::open_checked`] reports as not
/// current, so the store re-seals them under the current key).
pub(crate) struct Sealer {
    /// Seals new files; `None` stores them plain.
    key: Option<LessSafeKey>,
    /// Previous keys: they open, never seal.
    previous: Vec<LessSafeKey>,
    /// Opens plaintext files although a key is set: only `attendanced seal-store`, which
    /// seals them. Otherwise whoever can write the card could plant a face under
    /// someone's file name.
    accept_plain: bool,
    rng: SystemRandom,
}

/// A stored file's content, and whether it is stored the way this sealer writes.
pub(crate) struct Opened {
    pub(crate) plain: Vec<u8>,
    /// Sealed with the current key (or plain, when there is no key).
    pub(crate) current: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("encrypting", &self.key.is_some())
            .field("previous_keys", &self.previous.len())
            .finish()
    }
}

fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    // A 32-byte key is exactly what CHACHA20_POLY1305 takes: cannot fail.
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte ChaCha20 key"))
}

impl Sealer {
    /// No encryption: files are written as they are.
    pub(crate) fn plain() -> Self {
        Self {
            key: None,
            previous: Vec::new(),
            accept_plain: false,
            rng: SystemRandom::new(),
        }
    }

    /// A sealer with this key.
    pub(crate) fn with_key(key: &[u8; KEY_LEN]) -> Self {
        Self {
            key: Some(aead_key(key)),
            ..Self::plain()
        }
    }

    /// Also opens files sealed with `key` (a key being rotated out).
    pub(crate) fn with_previous(mut self, key: &[u8; KEY_LEN]) -> Self {
        self.previous.push(aead_key(key));
        self
    }

    /// Whether files are sealed (a current key is configured).
    pub(crate) fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// Also opens plaintext files with a key set, to seal them (`attendanced seal-store`).
    pub(crate) fn accepting_plain(mut self) -> Self {
        self.accept_plain = true;
        self
    }

    /// The sealer `storage.encryption_key_file` and `storage.previous_key_files` describe.
    pub(crate) fn from_key_files(
        current: Option<&Path>,
        previous: &[PathBuf],
    ) -> Result<Self, SealError> {
        let mut sealer = match current {
            Some(path) => Self::with_key(&read_key_file(path)?),
            None => Self::plain(),
        };
        for path in previous {
            sealer = sealer.with_previous(&read_key_file(path)?);
        }
        Ok(sealer)
    }

    /// The bytes to store for a file called `name`.
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(key) = &self.key else {
            return Ok(plain.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut body,
        )
        .map_err(|_| SealError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The content of a stored file called `name`. Plain files open only while no key is
    /// configured (or for `seal-store`).
    pub(crate) fn open(&self, name: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        self.open_checked(name, stored).map(|o| o.plain)
    }

    /// [`Sealer::open`], telling whether the file is stored under the current key.
    pub(crate) fn open_checked(&self, name: &str, stored: &[u8]) -> Result<Opened, SealError> {
        let Some(sealed) = stored.strip_prefix(MAGIC.as_slice()) else {
            if self.key.is_some() && !self.accept_plain {
                return Err(SealError::Unsealed);
            }
            return Ok(Opened {
                plain: stored.to_vec(),
                current: self.key.is_none(),
            });
        };
        if self.key.is_none() && self.previous.is_empty() {
            return Err(SealError::NoKey);
        }
        let (nonce, body) = sealed
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(SealError::Tampered)?;
        let keys = self.key.iter().map(|k| (k, true));
        let keys = keys.chain(self.previous.iter().map(|k| (k, false)));
        for (key, current) in keys {
            let mut body = body.to_vec();
            if let Ok(plain) = key.open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(name.as_bytes()),
                &mut body,
            ) {
                return Ok(Opened {
                    plain: plain.to_vec(),
                    current,
                });
            }
        }
        Err(SealError::Tampered)
    }
}

/// Reads a key file: 64 hex digits (as `attendanced new-storage-key` writes) or 32 raw
/// bytes. A key file others can read is refused.
fn read_key_file(path: &Path) -> Result<[u8; KEY_LEN], SealError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |why: String| SealError::KeyFile {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "mode {:o} lets other users read it; chmod 600",
            meta.permissions().mode() & 0o777
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    parse_key(&bytes).map_err(err)
}

/// A new random key as the 64 hex digits a key file holds.
pub(crate) fn new_key_hex() -> Result<String, SealError> {
    let mut k = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| SealError::Random)?;
    Ok(hex::encode(k))
}

fn parse_key(bytes: &[u8]) -> Result<[u8; KEY_LEN], String> {
    let mut k = [0u8; KEY_LEN];
    if let Ok(text) = std::str::from_utf8(bytes)
        && hex::decode_to_slice(text.trim(), &mut k).is_ok()
    {
        return Ok(k);
    }
    <[u8; KEY_LEN]>::try_from(bytes).map_err(|_| {
        format!(
            "want 64 hex digits or {KEY_LEN} raw bytes, found {} bytes",
            bytes.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Sealer {
        Sealer::with_key(&[b; KEY_LEN])
    }

    #[test]
    fn sealed_files_open_only_under_their_name_and_key() {
        let s = key(7);
        let sealed = s.seal("EMP001_a.npy", b"\x93NUMPY template").unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert!(
            !sealed.windows(5).any(|w| w == b"NUMPY"),
            "plaintext leaked"
        );
        assert_eq!(
            s.open("EMP001_a.npy", &sealed).unwrap(),
            b"\x93NUMPY template"
        );
        // Two seals of the same bytes differ (fresh nonce).
        assert_ne!(
            sealed,
            s.seal("EMP001_a.npy", b"\x93NUMPY template").unwrap()
        );
        assert!(matches!(
            s.open("EMP002_a.npy", &sealed),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            key(8).open("EMP001_a.npy", &sealed),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            Sealer::plain().open("EMP001_a.npy", &sealed),
            Err(SealError::NoKey)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            s.open("EMP001_a.npy", &flipped),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            s.open("EMP001_a.npy", &sealed[..MAGIC.len() + 3]),
            Err(SealError::Tampered)
        ));
    }

    #[test]
    fn previous_keys_open_and_report_what_to_re_seal() {
        let old = key(1);
        let sealed_old = old.seal("t.npy", b"template").unwrap();
        let rotating = Sealer::with_key(&[2; KEY_LEN]).with_previous(&[1; KEY_LEN]);
        let o = rotating.open_checked("t.npy", &sealed_old).unwrap();
        assert_eq!((o.plain.as_slice(), o.current), (&b"template"[..], false));
        let sealed_new = rotating.seal("t.npy", b"template").unwrap();
        assert!(rotating.open_checked("t.npy", &sealed_new).unwrap().current);
        assert!(matches!(
            old.open("t.npy", &sealed_new),
            Err(SealError::Tampered)
        ));
        // Plain files are refused by a sealer with a key (only seal-store opens them, to
        // seal them); sealed ones are not current for one turning encryption off.
        assert!(matches!(
            rotating.open_checked("t.npy", b"plain"),
            Err(SealError::Unsealed)
        ));
        let sealing = Sealer::with_key(&[2; KEY_LEN]).accepting_plain();
        assert!(!sealing.open_checked("t.npy", b"plain").unwrap().current);
        let turning_off = Sealer::plain().with_previous(&[1; KEY_LEN]);
        let o = turning_off.open_checked("t.npy", &sealed_old).unwrap();
        assert_eq!((o.plain.as_slice(), o.current), (&b"template"[..], false));
        assert!(turning_off.open_checked("t.npy", b"plain").unwrap().current);
    }

    #[test]
    fn plain_files_pass_through_only_without_a_key() {
        assert_eq!(Sealer::plain().seal("a", b"x").unwrap(), b"x");
        assert_eq!(Sealer::plain().open("a", b"\x89PNG").unwrap(), b"\x89PNG");
        // A planted plaintext template under someone's file name is not read.
        assert!(matches!(
            key(1).open("EMP001_a.npy", b"\x93NUMPY planted"),
            Err(SealError::Unsealed)
        ));
    }

    #[test]
    fn key_files_hex_or_raw_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let hex = dir.join("hex.key");
        std::fs::write(&hex, format!("{}\n", new_key_hex().unwrap())).unwrap();
        std::fs::set_permissions(&hex, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            Sealer::from_key_files(Some(&hex), &[])
                .unwrap()
                .key
                .is_some()
        );
        let raw = dir.join("raw.key");
        std::fs::write(&raw, [3u8; 32]).unwrap();
        std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Sealer::from_key_files(Some(&raw), &[]).is_ok());
        std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Sealer::from_key_files(Some(&raw), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        let short = dir.join("short.key");
        std::fs::write(&short, "abcd").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Sealer::from_key_files(Some(&short), &[]).is_err());
        assert!(Sealer::from_key_files(None, &[dir.join("missing")]).is_err());
    }
}
