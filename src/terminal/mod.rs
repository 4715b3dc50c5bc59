//! The terminal's operations — identify, enrol, punch, administer — on top of the face
//! pipeline and the store. Transport-free: the HTTP handlers and the CLI call these.

pub mod input;
pub mod recognizer;
pub mod reembed;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use image::RgbImage;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tracing::{info, warn};

use crate::config::Config;
use crate::event::Source;
use crate::face::{
    Accepted, Decision, DecodeError, FaceCrop, FacePipeline, MatchRule, PipelineError, Rejection,
    embedder_by_name, template,
};
use crate::punch::{DayZone, PunchKind, PunchRequest};
use crate::reason::{QualityIssue, Reason};
use crate::store::{
    AttendanceQuery, AttendanceRow, NewAttempt, NewTemplate, PunchOutcome, PunchRules, Sealer,
    Store, StoreError, UserRow, ts,
};
pub use recognizer::{LoadReport, Recognizer};
pub use reembed::{ReembedReport, reembed_missing};

/// Why an operation did not happen. Face outcomes (no face, unknown, ...) are not errors:
/// they are answers, and recorded.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("bad image: {0}")]
    BadImage(#[from] DecodeError),
    #[error("{field}: {why}")]
    InvalidField { field: &'static str, why: String },
    #[error("no user {0}")]
    UserNotFound(String),
    #[error("face already enrolled as {employee_id}")]
    AlreadyEnrolled {
        employee_id: String,
        name: String,
        distance: f32,
    },
    #[error("too many analyses in progress")]
    Busy,
    #[error("disk almost full ({free_mb} MB free)")]
    StorageFull { free_mb: u64 },
    #[error("camera unavailable")]
    CameraUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl TerminalError {
    pub fn reason(&self) -> Reason {
        match self {
            TerminalError::BadImage(_) => Reason::BadImage,
            TerminalError::InvalidField { .. } => Reason::InvalidField,
            TerminalError::UserNotFound(_) => Reason::UserNotFound,
            TerminalError::AlreadyEnrolled { .. } => Reason::AlreadyEnrolled,
            TerminalError::Busy => Reason::Busy,
            TerminalError::StorageFull { .. } => Reason::StorageFull,
            TerminalError::CameraUnavailable => Reason::CameraUnavailable,
            TerminalError::Internal(_) => Reason::InternalError,
        }
    }
}

impl From<StoreError> for TerminalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UserNotFound(id) => TerminalError::UserNotFound(id),
            StoreError::NameRequired(_) => TerminalError::InvalidField {
                field: "name",
                why: "required for a new user".into(),
            },
            other => TerminalError::Internal(other.to_string()),
        }
    }
}

/// Who punches, which way, from where.
#[derive(Debug, Clone)]
pub struct PunchInput {
    pub request: PunchRequest,
    pub device_id: Option<String>,
    pub ts_client: Option<String>,
}

/// The answer to an identification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IdentifyAnswer {
    Recognised {
        employee_id: String,
        name: String,
        distance: f32,
        threshold: f32,
        kind: PunchKind,
        /// Same punch again inside the duplicate window: nothing new recorded.
        duplicate: bool,
        /// The recorded event (none for a duplicate).
        event_id: Option<String>,
        ts_server: String,
    },
    Failed {
        reason: Reason,
        detail: Option<QualityIssue>,
        /// Distance to the nearest template, when matching happened.
        min_distance: Option<f32>,
        threshold: f32,
        event_id: String,
        ts_server: String,
    },
}

/// Who was at the door, before it is recorded.
#[derive(Debug, Clone)]
pub struct Identification {
    /// The recognised employee, if any.
    pub employee_id: Option<String>,
    /// Distance to the matched (or nearest) template.
    pub distance: Option<f32>,
    /// Why nobody was recognised.
    pub reason: Option<Reason>,
    pub detail: Option<QualityIssue>,
    /// Face crop for the punch thumbnail (when thumbnails are kept).
    pub thumbnail: Option<FaceCrop>,
}

impl Identification {
    pub fn rejected(r: &Rejection) -> Identification {
        Identification {
            employee_id: None,
            distance: None,
            reason: Some(r.reason()),
            detail: r.quality_issue(),
            thumbnail: None,
        }
    }
}

/// Enrolment request.
#[derive(Debug, Clone)]
pub struct EnrolInput {
    pub employee_id: Option<String>,
    pub name: Option<String>,
    pub device_id: Option<String>,
}

/// The answer to an enrolment.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolAnswer {
    Enrolled {
        employee_id: String,
        name: String,
        new_user: bool,
        template_id: i64,
    },
    /// The photo has no usable face.
    Rejected(Rejection),
}

/// What `/health` reports about the terminal's parts.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub database_ok: bool,
    pub outbox_pending: Option<u64>,
    /// Published, but MySQL's receipt not yet seen.
    pub outbox_unconfirmed: Option<u64>,
    pub free_mb: Option<u64>,
    pub storage_ok: bool,
    pub embedder: String,
    pub templates: usize,
    pub people: usize,
}

pub struct Terminal {
    pub config: Config,
    store: Arc<Store>,
    recognizer: Recognizer,
    pipeline: FacePipeline,
    rules: PunchRules,
    /// Requests admitted (running or waiting for an analysis slot): bounds the queue.
    admission: Semaphore,
    /// Analyses running at once.
    analyses: Semaphore,
    /// Enrolments are checked for duplicates and written one at a time, so two photos of
    /// one face enrolled at the same moment cannot both pass.
    enrol_lock: Mutex<()>,
    /// Poked after every recorded attempt so the outbox publisher sends it at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Default language of answers and the overlay (SIGHUP may change it).
    pub locale: crate::i18n::SharedLocale,
}

/// The at-rest encryption `storage.encryption_key_file` and `previous_key_files` ask for.
fn sealer_for(config: &Config) -> Result<Sealer, TerminalError> {
    let s = &config.storage;
    Sealer::from_key_files(s.encryption_key_file.as_deref(), &s.previous_key_files).map_err(|e| {
        TerminalError::InvalidField {
            field: "storage.encryption_key_file",
            why: e.to_string(),
        }
    })
}

/// How long a request may wait for an analysis slot before `busy`.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

impl Terminal {
    /// Opens the store, picks the embedder and loads the gallery.
    pub fn open(config: Config) -> Result<Terminal, TerminalError> {
        let store = Store::open(
            &config.database_path(),
            &config.encoding_dir(),
            &config.image_dir(),
        )?
        .with_sealer(sealer_for(&config)?);
        let swept = store.sweep_orphans()?;
        if swept > 0 {
            info!(files = swept, "removed files left by an interrupted write");
        }
        let resealed = store.reseal_files()?;
        if resealed.rewritten > 0 {
            info!(
                files = resealed.rewritten,
                "biometric files re-written under the current storage key"
            );
        }
        if resealed.unreadable > 0 {
            warn!(
                files = resealed.unreadable,
                "biometric files that no configured storage key opens (left as they are)"
            );
        }
        let embedder =
            embedder_by_name(&config.face.embedder, &config.face.models_dir).map_err(|why| {
                TerminalError::InvalidField {
                    field: "face.embedder",
                    why,
                }
            })?;
        let rule = MatchRule::resolve(embedder.as_ref(), config.face.tolerance, config.face.margin);
        let pipeline = FacePipeline::new(
            config.face.pipeline,
            crate::face::DecodeLimits {
                max_bytes: config.http.max_body_bytes,
                ..Default::default()
            },
            embedder.clone(),
        );
        let reembedded = reembed::reembed_missing(&store, embedder.as_ref())?;
        if reembedded.templates + reembedded.failed > 0 {
            info!(
                embedder = embedder.name(),
                templates = reembedded.templates,
                failed = reembedded.failed,
                "re-embedded stored enrolment crops"
            );
        }
        let recognizer = Recognizer::new(embedder, rule);
        let report = recognizer.load(&store)?;
        let missing = store.users_without(recognizer.embedder().name())?;
        if !missing.is_empty() {
            warn!(
                embedder = recognizer.embedder().name(),
                users = ?missing,
                "users without a template for this embedder cannot be recognised: re-enrol them"
            );
        }
        info!(
            embedder = recognizer.embedder().name(),
            templates = report.templates,
            threshold = rule.threshold,
            margin = rule.margin,
            "gallery loaded"
        );
        let zone = match config.punch.timezone.as_str() {
            "local" => DayZone::Local,
            tz => crate::config::parse_offset(tz).map_or(DayZone::Local, DayZone::Fixed),
        };
        let rules = PunchRules {
            duplicate_window: chrono::Duration::seconds(i64::from(
                config.punch.duplicate_window_secs,
            )),
            zone,
        };
        let slots = config.http.max_concurrent_analyses;
        Ok(Terminal {
            store: Arc::new(store),
            recognizer,
            pipeline,
            rules,
            admission: Semaphore::new(slots + config.http.max_queued_analyses),
            analyses: Semaphore::new(slots),
            enrol_lock: Mutex::new(()),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            locale: crate::i18n::SharedLocale::new(config.locale),
            config,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn recognizer(&self) -> &Recognizer {
        &self.recognizer
    }

    pub fn pipeline(&self) -> &FacePipeline {
        &self.pipeline
    }

    /// Waits (boundedly) for an analysis slot.
    async fn analysis_slot(
        &self,
    ) -> Result<(SemaphorePermit<'_>, SemaphorePermit<'_>), TerminalError> {
        let admitted = self
            .admission
            .try_acquire()
            .map_err(|_| TerminalError::Busy)?;
        let slot = tokio::time::timeout(QUEUE_WAIT, self.analyses.acquire())
            .await
            .map_err(|_| TerminalError::Busy)?
            .map_err(|_| TerminalError::Busy)?;
        Ok((admitted, slot))
    }

    /// Decodes and analyses a photo on the blocking pool.
    async fn accept_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<Result<Accepted, Rejection>, TerminalError> {
        let _slot = self.analysis_slot().await?;
        let me = self.clone();
        blocking(move || match me.pipeline.accept(&bytes) {
            Ok(a) => Ok(Ok(a)),
            Err(PipelineError::Rejected(r)) => Ok(Err(r)),
            Err(PipelineError::Decode(d)) => Err(TerminalError::BadImage(d)),
        })
        .await?
    }

    fn check_disk(&self) -> Result<(), TerminalError> {
        let free = self.store.free_bytes()? / (1024 * 1024);
        if free < self.config.storage.min_free_mb {
            return Err(TerminalError::StorageFull { free_mb: free });
        }
        Ok(())
    }

    /// MODE_B: identify the person in an uploaded photo and record the attempt.
    pub async fn identify_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        p: PunchInput,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let verdict = self.accept_photo(bytes).await?;
        self.identify_verdict(verdict, p, Source::Upload).await
    }

    /// Matches an analysed frame (or its rejection) and records the attempt.
    pub async fn identify_verdict(
        self: &Arc<Self>,
        verdict: Result<Accepted, Rejection>,
        p: PunchInput,
        source: Source,
    ) -> Result<IdentifyAnswer, TerminalError> {
        self.check_disk()?;
        let me = self.clone();
        blocking(move || {
            let ident = me.identify(&verdict)?;
            me.record(ident, p, source)
        })
        .await?
    }

    /// Who the face is, under the current rule (reloading the gallery if an admin
    /// changed it from the CLI).
    pub fn identify(
        &self,
        verdict: &Result<Accepted, Rejection>,
    ) -> Result<Identification, TerminalError> {
        self.recognizer.refresh_if_changed(&self.store)?;
        Ok(match verdict {
            Err(rejection) => Identification::rejected(rejection),
            Ok(accepted) => {
                let probe = self.pipeline.embedder().embed(&accepted.crop);
                let (nearest, decision) = self.recognizer.decide(&probe);
                Identification {
                    employee_id: match &decision {
                        Decision::Match { employee_id, .. } => Some(employee_id.clone()),
                        Decision::Unknown { .. } => None,
                    },
                    distance: nearest.map(|n| n.distance),
                    reason: match decision {
                        Decision::Match { .. } => None,
                        Decision::Unknown { .. } => Some(Reason::Unknown),
                    },
                    detail: None,
                    thumbnail: Some(accepted.crop.clone()),
                }
            }
        })
    }

    /// Records an identification as an attendance attempt (with its outbox event) and
    /// builds the answer.
    pub async fn record_identification(
        self: &Arc<Self>,
        ident: Identification,
        p: PunchInput,
        source: Source,
    ) -> Result<IdentifyAnswer, TerminalError> {
        self.check_disk()?;
        let me = self.clone();
        blocking(move || me.record(ident, p, source)).await?
    }

    fn record(
        &self,
        ident: Identification,
        p: PunchInput,
        source: Source,
    ) -> Result<IdentifyAnswer, TerminalError> {
        let rule = self.recognizer.rule();
        let image_ref = match (&ident.thumbnail, self.config.storage.keep_punch_images) {
            (Some(crop), true) => Some(self.save_thumbnail(crop)?),
            _ => None,
        };
        let attempt = NewAttempt {
            employee_id: ident.employee_id.clone(),
            request: p.request,
            device_id: p.device_id.unwrap_or_else(|| self.config.device_id.clone()),
            site: self.config.site.clone(),
            source,
            distance: ident.distance,
            threshold: Some(rule.threshold),
            embedder: Some(self.recognizer.embedder().name().to_owned()),
            reason: ident.reason,
            detail: ident.detail,
            ts_client: p.ts_client,
            image_ref,
        };
        let now = Utc::now();
        let outcome = self.store.record_attempt(&attempt, &self.rules, now)?;
        if matches!(outcome, PunchOutcome::Recorded(_)) {
            self.outbox_wake.notify_one();
        }
        let ts_server = ts(now);
        Ok(match (ident.employee_id, outcome) {
            (Some(employee_id), outcome) => {
                let name = self
                    .store
                    .user(&employee_id)?
                    .map(|u| u.name)
                    .unwrap_or_default();
                let (kind, duplicate, event_id) = match outcome {
                    PunchOutcome::Recorded(row) => (
                        PunchKind::parse(&row.kind).unwrap_or(PunchKind::In),
                        false,
                        Some(row.event_id),
                    ),
                    PunchOutcome::Duplicate { kind } => (kind, true, None),
                };
                info!(
                    employee_id = %employee_id,
                    event_id = event_id.as_deref().unwrap_or(""),
                    kind = %kind,
                    duplicate,
                    distance = ident.distance,
                    source = source.as_str(),
                    "recognised"
                );
                IdentifyAnswer::Recognised {
                    employee_id,
                    name,
                    distance: ident.distance.unwrap_or(0.0),
                    threshold: rule.threshold,
                    kind,
                    duplicate,
                    event_id,
                    ts_server,
                }
            }
            (None, outcome) => {
                let event_id = match outcome {
                    PunchOutcome::Recorded(row) => row.event_id,
                    // Failed attempts are never duplicates.
                    PunchOutcome::Duplicate { .. } => String::new(),
                };
                let reason = ident.reason.unwrap_or(Reason::Unknown);
                info!(
                    reason = %reason,
                    event_id = %event_id,
                    distance = ident.distance,
                    source = source.as_str(),
                    "not recognised"
                );
                IdentifyAnswer::Failed {
                    reason,
                    detail: ident.detail,
                    min_distance: ident.distance,
                    threshold: rule.threshold,
                    event_id,
                    ts_server,
                }
            }
        })
    }

    fn save_thumbnail(&self, crop: &FaceCrop) -> Result<String, TerminalError> {
        let name = format!("punch_{}.jpg", uuid::Uuid::now_v7().simple());
        let jpeg = encode_jpeg(&crop.rgb, 80)?;
        self.store
            .write_file(self.store.image_dir(), &name, &jpeg)?;
        Ok(name)
    }

    /// Enrols the face in a photo as a new user or a new template of an existing one.
    pub async fn enrol_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        input: EnrolInput,
    ) -> Result<EnrolAnswer, TerminalError> {
        if input.employee_id.is_none() && input.name.is_none() {
            return Err(TerminalError::InvalidField {
                field: "name",
                why: "required for a new user".into(),
            });
        }
        let accepted = match self.accept_photo(bytes).await? {
            Ok(a) => a,
            Err(r) => return Ok(EnrolAnswer::Rejected(r)),
        };
        self.check_disk()?;
        let _one_at_a_time = self.enrol_lock.lock().await;
        let me = self.clone();
        blocking(move || me.enrol_blocking(accepted, input)).await?
    }

    fn enrol_blocking(
        &self,
        accepted: Accepted,
        input: EnrolInput,
    ) -> Result<EnrolAnswer, TerminalError> {
        self.recognizer.refresh_if_changed(&self.store)?;
        let embedder = self.pipeline.embedder();
        let rows = embedder.enrol(&accepted.crop);
        // The spec's rule: one registration per person. A face that matches someone
        // else is refused; adding a template to the same employee is fine.
        if let Some(n) = self.recognizer.nearest(&embedder.embed(&accepted.crop))
            && n.distance <= self.recognizer.rule().threshold
            && input.employee_id.as_deref() != Some(n.employee_id.as_str())
        {
            let name = self
                .store
                .user(&n.employee_id)?
                .map(|u| u.name)
                .unwrap_or_default();
            return Err(TerminalError::AlreadyEnrolled {
                employee_id: n.employee_id,
                name,
                distance: n.distance,
            });
        }
        if let Some(id) = &input.employee_id
            && input.name.is_none()
            && self.store.user(id)?.is_none()
        {
            return Err(TerminalError::InvalidField {
                field: "name",
                why: format!("required: {id} is a new user"),
            });
        }
        let npy = template::encode(&rows).map_err(|e| TerminalError::Internal(e.to_string()))?;
        let png = if self.config.storage.keep_enrolment_crops {
            Some(encode_png(&accepted.crop.rgb)?)
        } else {
            None
        };
        let enrolled = self.store.enrol(&NewTemplate {
            employee_id: input.employee_id.as_deref(),
            name: input.name.as_deref(),
            embedder: embedder.name(),
            template: &npy,
            crop_png: png.as_deref(),
            quality: accepted.quality.score(),
            device_id: input.device_id.as_deref(),
        })?;
        self.recognizer.add(&enrolled.employee_id, &rows);
        info!(employee_id = %enrolled.employee_id, new_user = enrolled.new_user, "enrolled");
        Ok(EnrolAnswer::Enrolled {
            employee_id: enrolled.employee_id,
            name: enrolled.name,
            new_user: enrolled.new_user,
            template_id: enrolled.template_id,
        })
    }

    /// `POST /attendance`: a punch without a face (admin correction, badge fallback).
    pub async fn manual_punch(
        self: &Arc<Self>,
        employee_id: String,
        p: PunchInput,
        distance: Option<f32>,
    ) -> Result<IdentifyAnswer, TerminalError> {
        self.check_disk()?;
        let me = self.clone();
        blocking(move || {
            let user = me
                .store
                .user(&employee_id)?
                .ok_or_else(|| TerminalError::UserNotFound(employee_id.clone()))?;
            let attempt = NewAttempt {
                employee_id: Some(employee_id.clone()),
                request: p.request,
                device_id: p.device_id.unwrap_or_else(|| me.config.device_id.clone()),
                site: me.config.site.clone(),
                source: Source::Manual,
                distance,
                threshold: None,
                embedder: None,
                reason: None,
                detail: None,
                ts_client: p.ts_client,
                image_ref: None,
            };
            let now = Utc::now();
            let outcome = me.store.record_attempt(&attempt, &me.rules, now)?;
            if matches!(outcome, PunchOutcome::Recorded(_)) {
                me.outbox_wake.notify_one();
            }
            let (kind, duplicate, event_id) = match outcome {
                PunchOutcome::Recorded(row) => (
                    PunchKind::parse(&row.kind).unwrap_or(PunchKind::In),
                    false,
                    Some(row.event_id),
                ),
                PunchOutcome::Duplicate { kind } => (kind, true, None),
            };
            Ok(IdentifyAnswer::Recognised {
                employee_id,
                name: user.name,
                distance: distance.unwrap_or(0.0),
                threshold: 0.0,
                kind,
                duplicate,
                event_id,
                ts_server: ts(now),
            })
        })
        .await?
    }

    pub async fn attendance(
        self: &Arc<Self>,
        q: AttendanceQuery,
    ) -> Result<Vec<AttendanceRow>, TerminalError> {
        let me = self.clone();
        blocking(move || Ok(me.store.attendance(&q)?)).await?
    }

    pub async fn users(self: &Arc<Self>) -> Result<Vec<UserRow>, TerminalError> {
        let me = self.clone();
        blocking(move || Ok(me.store.users()?)).await?
    }

    pub async fn user(self: &Arc<Self>, employee_id: String) -> Result<UserRow, TerminalError> {
        let me = self.clone();
        blocking(move || {
            me.store
                .user(&employee_id)?
                .ok_or(TerminalError::UserNotFound(employee_id))
        })
        .await?
    }

    /// Deletes a user, their templates and face images; attendance history stays.
    pub async fn delete_user(
        self: &Arc<Self>,
        employee_id: String,
    ) -> Result<usize, TerminalError> {
        let _guard = self.enrol_lock.lock().await;
        let me = self.clone();
        blocking(move || {
            let removed = me.store.delete_user(&employee_id)?;
            me.recognizer.remove(&employee_id);
            info!(employee_id = %employee_id, templates = removed.templates, "user deleted");
            Ok(removed.templates)
        })
        .await?
    }

    /// Deletes every user (attendance stays). Returns the number of users removed.
    pub async fn reset_users(self: &Arc<Self>) -> Result<usize, TerminalError> {
        let _guard = self.enrol_lock.lock().await;
        let me = self.clone();
        blocking(move || {
            let removed = me.store.reset_users()?;
            me.recognizer.clear();
            info!(users = removed.users, "all users deleted");
            Ok(removed.users)
        })
        .await?
    }

    pub async fn health(self: &Arc<Self>) -> Health {
        let me = self.clone();
        let h = blocking(move || {
            let database_ok = me.store.ping().is_ok();
            let free_mb = me.store.free_bytes().ok().map(|b| b / (1024 * 1024));
            let (templates, people) = me.recognizer.size();
            Health {
                database_ok,
                outbox_pending: database_ok
                    .then(|| me.store.outbox_pending().ok())
                    .flatten(),
                outbox_unconfirmed: database_ok
                    .then(|| me.store.outbox_unconfirmed().ok())
                    .flatten(),
                storage_ok: free_mb.is_some_and(|f| f >= me.config.storage.min_free_mb),
                free_mb,
                embedder: me.recognizer.embedder().name().to_owned(),
                templates,
                people,
            }
        })
        .await;
        h.unwrap_or_else(|_| Health {
            database_ok: false,
            outbox_pending: None,
            outbox_unconfirmed: None,
            free_mb: None,
            storage_ok: false,
            embedder: self.recognizer.embedder().name().to_owned(),
            templates: 0,
            people: 0,
        })
    }
}

/// Runs blocking work (SQLite, pixels) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TerminalError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TerminalError::Internal(format!("worker failed: {e}")))
}

pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, TerminalError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| TerminalError::Internal(format!("jpeg: {e}")))?;
    Ok(out)
}

fn encode_png(img: &RgbImage) -> Result<Vec<u8>, TerminalError> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| TerminalError::Internal(format!("png: {e}")))?;
    Ok(out.into_inner())
}
