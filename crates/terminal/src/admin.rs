//! `attendanced`'s one-shot commands (the spec's helper scripts: `reset_users.py` and
//! friends, plus key tools and the evaluation). Store commands are safe while the daemon
//! runs: SQLite serialises writers and the daemon reloads its gallery when it sees
//! another process's commit.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::daemon::Config;
use crate::store::{SealError, Store, StoreError, migrate};
use attendance_eval::{EvalError, Evaluation, PairsReport, Protocol};
use attendance_face::{DecodeLimits, EmbedderChoice, FacePipeline, RuleOverrides};

fn open(config: &Config) -> Result<Store, StoreError> {
    let store = Store::open(&config.paths())?;
    // A deletion made here reaches the other doors, as one made over HTTP does.
    Ok(match config.fleet() {
        Some(f) => store.with_fleet(f),
        None => store,
    })
}

/// `attendanced users list`: one line per user.
pub fn list_users(config: &Config, out: &mut impl Write) -> Result<(), StoreError> {
    let store = open(config)?;
    writeln!(
        out,
        "{:<12} {:<24} {:>9}  {:<24} EMBEDDERS",
        "EMPLOYEE_ID", "NAME", "TEMPLATES", "CREATED_AT"
    )?;
    for u in store.users()? {
        writeln!(
            out,
            "{:<12} {:<24} {:>9}  {:<24} {}",
            u.employee_id,
            u.name,
            u.templates,
            u.created_at,
            u.embedders.join(",")
        )?;
    }
    Ok(())
}

/// `attendanced users delete ID`.
pub fn delete_user(config: &Config, employee_id: &str) -> Result<usize, StoreError> {
    Ok(open(config)?.delete_user(employee_id, true)?.templates)
}

/// `attendanced users unlearn ID`: the learned templates go, the enrolment stays.
pub fn forget_learned(config: &Config, employee_id: &str) -> Result<usize, StoreError> {
    open(config)?.forget_learned(employee_id)
}

/// `attendanced users reset --yes`: every user and template; attendance stays.
pub fn reset_users(config: &Config) -> Result<usize, StoreError> {
    Ok(open(config)?.reset_users()?.users)
}

/// `attendanced seal-store`: seals the biometric files stored before a storage key was
/// configured (a terminal with a key refuses plaintext files). Run with the daemon
/// stopped; returns how many were sealed and how many no key opens.
pub fn seal_store(config: &Config) -> Result<(usize, usize), StoreError> {
    let sealer = config.storage.sealer().map_err(|source| StoreError::Seal {
        file: "storage.encryption_key_file".into(),
        source,
    })?;
    if !sealer.encrypts() {
        return Err(StoreError::Seal {
            file: "storage.encryption_key_file".into(),
            source: SealError::NoKey,
        });
    }
    let store = open(config)?.with_sealer(sealer.accepting_plain());
    let r = store.reseal_files()?;
    Ok((r.rewritten, r.unreadable))
}

/// `attendanced migrate`: applies pending schema steps; returns the resulting version.
pub fn migrate(config: &Config) -> Result<u32, StoreError> {
    open(config)?;
    Ok(migrate::latest())
}

/// `attendanced hash-key`: the SHA-256 of an API key, for `[auth]`.
pub fn hash_key(key: &str) -> String {
    crate::http::auth::hash_key(key)
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(transparent)]
    Key(#[from] SealError),
    #[error("creating {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// `attendanced new-storage-key PATH`: a new random key in a new file, mode 0600 (an
/// existing file is never overwritten).
pub fn new_storage_key(path: &Path) -> Result<(), KeyFileError> {
    let key = crate::store::seal::new_key_hex()?;
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    writeln!(f, "{key}").map_err(io)?;
    f.sync_all().map_err(io)
}

/// `attendanced eval`: the protocol over `dataset` with the configured pipeline, or the
/// given embedder, tolerance and margin.
pub fn eval(
    config: &Config,
    protocol: &Protocol,
    embedder: Option<EmbedderChoice>,
    overrides: RuleOverrides,
) -> Result<Evaluation, EvalError> {
    let face = &config.face;
    let pipeline = eval_pipeline(config, embedder)?;
    let calibrated = pipeline.embedder().calibration().rule;
    let rule = attendance_face::MatchRule::resolve(calibrated, overrides.or(face.overrides()));
    attendance_eval::evaluate(&pipeline, protocol, rule)
}

/// `attendanced eval --write-cohort`: a cohort file of `dataset`'s faces (one each) for
/// the configured or given embedder; how many faces it holds.
pub fn write_cohort(
    config: &Config,
    embedder: Option<EmbedderChoice>,
    dataset: &Path,
    out: &Path,
) -> Result<usize, EvalError> {
    attendance_eval::write_cohort(&eval_pipeline(config, embedder)?, dataset, out)
}

/// `attendanced eval --pairs`: LFW View 2 pairs of `dataset`, 10-fold accuracy.
pub fn eval_pairs(
    config: &Config,
    embedder: Option<EmbedderChoice>,
    dataset: &Path,
    pairs: &Path,
    gates: bool,
) -> Result<PairsReport, EvalError> {
    attendance_eval::evaluate_pairs(&eval_pipeline(config, embedder)?, dataset, pairs, gates)
}

fn eval_pipeline(
    config: &Config,
    embedder: Option<EmbedderChoice>,
) -> Result<FacePipeline, EvalError> {
    let face = &config.face;
    let emb = embedder
        .unwrap_or(face.embedder)
        .load(&face.models_dir)
        .map_err(EvalError::Embedder)?;
    Ok(FacePipeline::new(
        face.pipeline,
        DecodeLimits::default(),
        emb,
    ))
}
