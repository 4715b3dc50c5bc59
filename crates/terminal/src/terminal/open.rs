//! Start-up: open the store (sealing files left unsealed), choose the embedder, re-embed
//! from stored crops after an embedder change, load the gallery.

use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{info, warn};

use super::admission::Admission;
use super::mode_switch::ModeSwitch;
use super::recognizer::Recognizer;
use super::record::{Recorder, RecorderParts};
use super::{Terminal, TerminalError, TerminalSettings, reembed};
use crate::clock::SystemClock;
use crate::metrics::TerminalMetrics;
use crate::store::Store;
use attendance_face::{DecodeLimits, FacePipeline};

impl Terminal {
    /// Opens the store, picks the embedder and loads the gallery. Blocks (file and model
    /// reads): async callers use `spawn_blocking`.
    pub(crate) fn open(settings: TerminalSettings) -> Result<Terminal, TerminalError> {
        let clock = SystemClock::shared(settings.punch.clock_synced.clone());
        let sealer = settings
            .storage
            .sealer()
            .map_err(|e| TerminalError::InvalidField {
                field: "storage.encryption_key_file",
                why: e.to_string(),
            })?;
        let mut store = Store::open(&settings.paths)?.with_sealer(sealer);
        if let Some(f) = &settings.fleet {
            store = store.with_fleet(f.clone());
        }
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
        if resealed.unsealed > 0 {
            warn!(
                files = resealed.unsealed,
                "biometric files not encrypted though a storage key is set: refused; \
                 `attendanced seal-store` seals files stored before encryption was turned on"
            );
        }
        if resealed.unreadable > 0 {
            warn!(
                files = resealed.unreadable,
                "biometric files that no configured storage key opens (left as they are)"
            );
        }
        let face = &settings.face;
        let embedder =
            face.embedder
                .load(&face.models_dir)
                .map_err(|why| TerminalError::InvalidField {
                    field: "face.embedder",
                    why,
                })?;
        let rule = face.rule(embedder.as_ref());
        let pipeline = FacePipeline::new(
            face.pipeline,
            DecodeLimits {
                max_bytes: settings.max_upload_bytes,
                ..Default::default()
            },
            Arc::clone(&embedder),
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
        if settings.liveness.is_some() && !embedder.finds_landmarks() {
            return Err(TerminalError::InvalidField {
                field: "camera.liveness",
                why: format!(
                    "needs the five landmarks of the dlib models; the {} embedder has none",
                    embedder.name()
                ),
            });
        }
        let recognizer = Recognizer::new(embedder, rule);
        let templates = recognizer.load(&store)?;
        let missing = store.users_without(recognizer.embedder().name())?;
        if !missing.is_empty() {
            warn!(
                embedder = recognizer.embedder().name(),
                users = ?missing,
                "users without a template for this embedder cannot be recognised: re-enrol them"
            );
        }
        let calibration = recognizer.embedder().calibration();
        let people = recognizer.size().1;
        info!(
            embedder = recognizer.embedder().name(),
            templates,
            people,
            threshold = rule.threshold,
            margin = rule.margin,
            neighbour_ratio = rule.neighbour_ratio,
            verify_threshold = rule.verify_threshold,
            measured_people = calibration.measured_people,
            "gallery loaded"
        );
        match calibration.identify_limit {
            Some(limit) if people > limit && !settings.face.identify_beyond_limit => warn!(
                embedder = recognizer.embedder().name(),
                people,
                limit,
                "more people than this embedder tells apart: faces are verified 1:1 only \
                 (an employee_id with each /identify); face.identify_beyond_limit allows 1:N"
            ),
            _ if people > calibration.measured_people => warn!(
                embedder = recognizer.embedder().name(),
                people,
                measured_people = calibration.measured_people,
                "gallery larger than the one the decision rule was measured on: \
                 the stranger rate is not known"
            ),
            _ => {}
        }
        let store = Arc::new(store);
        let metrics = Arc::new(TerminalMetrics::new(
            settings.metrics,
            &settings.site,
            &settings.device_id,
        ));
        let recorder = Recorder::new(RecorderParts {
            store: store.clone(),
            rules: settings.punch.rules(),
            storage: settings.storage.clone(),
            device_id: settings.device_id.clone(),
            site: settings.site.clone(),
            embedder: recognizer.embedder().name(),
            metrics: metrics.clone(),
            clock,
        });
        Ok(Terminal {
            store,
            recognizer,
            pipeline,
            admission: Admission::new(
                settings.max_concurrent_analyses,
                settings.max_queued_analyses,
            ),
            claims: Default::default(),
            enrol_lock: Arc::new(Mutex::new(())),
            recorder: Arc::new(recorder),
            trying: Default::default(),
            modes: Arc::new(ModeSwitch::new(
                settings.walk_up_mode,
                settings.walk_up_choice,
            )),
            metrics,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{settings, temp_dir, terminal};
    use super::*;

    #[test]
    fn opens_an_empty_terminal_with_the_configured_embedder() {
        let t = terminal();
        assert_eq!(t.terminal.embedder_name(), "hog-v1");
        assert!(t.dir.join("attendance.sqlite3").is_file());
        assert!(t.dir.join("encodings").is_dir() && t.dir.join("images").is_dir());
    }

    #[test]
    fn a_bad_storage_key_or_missing_models_name_their_setting() {
        let dir = temp_dir("open-bad");
        let mut s = settings(&dir);
        s.storage.encryption_key_file = Some(dir.join("no-such.key"));
        let e = Terminal::open(s).err().expect("refused");
        assert!(
            matches!(
                e,
                TerminalError::InvalidField {
                    field: "storage.encryption_key_file",
                    ..
                }
            ),
            "{e}"
        );
        let mut s = settings(&dir);
        s.face.embedder = attendance_face::EmbedderChoice::DlibResnet;
        s.face.models_dir = dir.join("no-models");
        let e = Terminal::open(s).err().expect("refused");
        assert!(
            matches!(
                e,
                TerminalError::InvalidField {
                    field: "face.embedder",
                    ..
                }
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
