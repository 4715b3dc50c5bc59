//! The dataset as the protocol reads it: identity folders in byte order, their images.

use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "pgm", "ppm", "bmp"];

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read dataset {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("dataset {0} has no identities")]
    Empty(PathBuf),
    #[error("{0}")]
    Embedder(String),
    #[error("cohort {0}: {1}")]
    Cohort(PathBuf, String),
    #[error("pairs file {0}: {1}")]
    Pairs(PathBuf, String),
}

/// What to run the protocol over.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub dataset: PathBuf,
    /// Protocol v2: each of these people's first usable photo joins the gallery.
    pub distractors: Option<PathBuf>,
    /// Only the first N distractor identities.
    pub distractor_limit: Option<usize>,
    /// The first K usable photos of each employee become templates (the protocol's 1).
    pub enrol_images: usize,
    /// Also replay every probe as this many jittered camera frames and decide by the
    /// several-frame vote (0: not measured).
    pub sequence_frames: usize,
    /// Also decide each sequence over up to this many windows of `sequence_frames`
    /// (walk-up's tries; 1: only the one window).
    pub sequence_tries: usize,
    /// Also score random galleries of these many people (employees + distractors),
    /// `repeats` of each, drawn with `seed` (empty: not measured).
    pub gallery_sizes: Vec<usize>,
    pub repeats: usize,
    pub seed: u64,
    /// The background cohort galleries measure neighbourhoods against.
    pub cohort: CohortChoice,
    /// Also replay the probes as visits in time order with learning at the door.
    pub learn: bool,
}

/// Which cohort the evaluation's galleries use.
#[derive(Debug, Clone, PartialEq)]
pub enum CohortChoice {
    /// The embedder's own (what a terminal uses).
    Embedder,
    /// None: neighbourhoods are the gallery's alone.
    None,
    /// The faces of a `.npy` file (`attendanced eval --write-cohort`), with the embedder's
    /// same-person distance.
    File(PathBuf),
}

impl Protocol {
    /// Protocol v1 over `dataset`.
    pub fn new(dataset: impl Into<PathBuf>) -> Self {
        Self {
            dataset: dataset.into(),
            distractors: None,
            distractor_limit: None,
            enrol_images: 1,
            sequence_frames: 0,
            sequence_tries: 1,
            gallery_sizes: Vec::new(),
            repeats: 20,
            seed: 1,
            cohort: CohortChoice::Embedder,
            learn: false,
        }
    }
}

/// An identity folder and its images, in protocol order.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub images: Vec<PathBuf>,
}

/// Lists identities and their images exactly as the protocol orders them.
pub fn list_dataset(dir: &Path) -> Result<Vec<Identity>, EvalError> {
    let io = |e| EvalError::Io(dir.to_path_buf(), e);
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let mut images: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for img in std::fs::read_dir(entry.path()).map_err(io)? {
            let img = img.map_err(io)?;
            let fname = img.file_name();
            let lower = fname.to_string_lossy().to_lowercase();
            let is_image = lower
                .rsplit_once('.')
                .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.contains(&ext));
            if is_image && img.path().is_file() {
                images.push((fname.as_encoded_bytes().to_vec(), img.path()));
            }
        }
        images.sort();
        ids.push((
            name.as_bytes().to_vec(),
            Identity {
                name,
                images: images.into_iter().map(|(_, p)| p).collect(),
            },
        ));
    }
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    if ids.is_empty() {
        return Err(EvalError::Empty(dir.to_path_buf()));
    }
    Ok(ids.into_iter().map(|(_, i)| i).collect())
}
