//! `[storage]` in the configuration: where the terminal keeps its state, what it keeps and
//! for how long, and the key that seals biometric files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SealError, Sealer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Face images (enrolment crops, optional punch thumbnails); `data_dir/images` if unset.
    pub(crate) image_dir: Option<PathBuf>,
    /// Templates (`.npy`); `data_dir/encodings` if unset.
    pub(crate) encoding_dir: Option<PathBuf>,
    /// Keep each enrolment's face crop so templates can be recomputed when the embedder
    /// changes. Without it, an embedder change means re-enrolling everyone.
    pub(crate) keep_enrolment_crops: bool,
    /// Save a face thumbnail with each punch (`image_ref`).
    pub(crate) keep_punch_images: bool,
    /// With `keep_punch_images`, at most this many thumbnails of failed attempts
    /// (unknown, bad quality, ...) an hour; recognised punches always keep theirs.
    pub(crate) failure_images_per_hour: u32,
    /// Days punch thumbnails are kept.
    pub(crate) punch_image_retention_days: u32,
    /// Days published outbox entries are kept before pruning.
    pub(crate) outbox_retention_days: u32,
    /// Free disk space under which new punches are refused (`storage_full`), in MB.
    pub(crate) min_free_mb: u64,
    /// Key that encrypts templates and face images at rest (64 hex digits, mode 0600;
    /// `attendanced new-storage-key` makes one). Unset: files are stored unencrypted.
    /// With systemd: `LoadCredential=storage-key:/etc/attendanced/storage.key` and
    /// `/run/credentials/attendanced.service/storage-key` here.
    pub(crate) encryption_key_file: Option<PathBuf>,
    /// Keys being rotated out: files sealed with them still open and are re-written
    /// under `encryption_key_file` (or as plain files, to turn encryption off) at start.
    pub(crate) previous_key_files: Vec<PathBuf>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            image_dir: None,
            encoding_dir: None,
            keep_enrolment_crops: true,
            keep_punch_images: false,
            failure_images_per_hour: 60,
            punch_image_retention_days: 30,
            outbox_retention_days: 7,
            min_free_mb: 64,
            encryption_key_file: None,
            previous_key_files: Vec::new(),
        }
    }
}

/// Where the store's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub database: PathBuf,
    pub encodings: PathBuf,
    pub images: PathBuf,
}

impl Paths {
    /// The lock file beside the database: one daemon per database.
    pub(crate) fn lock(&self) -> PathBuf {
        PathBuf::from(format!("{}.lock", self.database.display()))
    }
}

impl StorageSettings {
    /// The database in `data_dir`, the file folders where configured (else in `data_dir`).
    pub(crate) fn paths(&self, data_dir: &Path) -> Paths {
        Paths {
            database: data_dir.join("attendance.sqlite3"),
            encodings: self
                .encoding_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("encodings")),
            images: self
                .image_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("images")),
        }
    }

    /// The at-rest encryption `encryption_key_file` and `previous_key_files` ask for.
    pub(crate) fn sealer(&self) -> Result<Sealer, SealError> {
        Sealer::from_key_files(
            self.encryption_key_file.as_deref(),
            &self.previous_key_files,
        )
    }
}
