//! Applying the site's roster pages: face data checked and made into this terminal's
//! templates first (re-embedded from the crop when another embedder made them), then
//! the store and the in-memory gallery changed together, so a punch never matches
//! against half a page.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::recognizer::GalleryOp;
use super::{Terminal, TerminalError, blocking};
use crate::outbox::RosterLink;
use crate::store::roster_apply::{
    Applied, ReadyEnrol, ReadyEntry, ReadyFace, ReadyOp, ReadyPage, Step,
};
use attendance_face::{Embedding, template};
use attendance_wire::roster::wire::{Face, Op, Page};

/// A face made ready: what the store keeps and what the gallery gets.
struct Made {
    face: ReadyFace,
    rows: Vec<Embedding>,
}

impl Terminal {
    /// Applies one page; returns what the store made of it.
    pub(crate) async fn apply_roster(
        self: &Arc<Self>,
        page: Page,
    ) -> Result<Applied, TerminalError> {
        // One writer of people at a time: local enrolments and deletions, and pages.
        let writer = self.people_writer().await;
        let me = self.clone();
        blocking(move || {
            let _writer = writer;
            me.apply_page(page)
        })
        .await?
    }

    fn apply_page(&self, page: Page) -> Result<Applied, TerminalError> {
        let state = self.store.roster_state()?;
        let mut made: Vec<(String, Vec<Embedding>)> = Vec::new();
        let mut entries = Vec::with_capacity(page.entries.len());
        for e in page.entries.iter().filter(|e| e.revision > state.revision) {
            let c = &e.change;
            // Checked here too (the centre's record may predate its checks): a bad entry
            // is refused and recorded, never allowed to stop the page or the door.
            if let Err(why) = e.validate(&page.site) {
                warn!(revision = e.revision, employee_id = %c.employee_id, error = %why, "roster entry refused");
                entries.push(ReadyEntry {
                    revision: e.revision,
                    employee_id: c.employee_id.chars().take(50).collect(),
                    op: ReadyOp::Refused(why.to_string()),
                });
                continue;
            }
            let op = match &c.op {
                Op::Delete => ReadyOp::Delete,
                Op::Enrol {
                    name,
                    faces,
                    retire,
                } => {
                    let ids: Vec<&str> = faces.iter().map(|f| f.face_id.as_str()).collect();
                    let known = self.store.known_faces(&ids)?;
                    let mut ready = Vec::new();
                    for f in faces.iter().filter(|f| !known.contains(&f.face_id)) {
                        match self.make_face(f) {
                            Ok(m) => {
                                made.push((m.face.face_id.clone(), m.rows));
                                ready.push(m.face);
                            }
                            // A face learned at a door with another embedder has no
                            // crop: expected, not worth a warning per lesson.
                            Err(why) if f.learned => debug!(
                                employee_id = %c.employee_id,
                                face_id = %f.face_id,
                                why,
                                "learned face of another embedder skipped"
                            ),
                            Err(why) => warn!(
                                employee_id = %c.employee_id,
                                face_id = %f.face_id,
                                embedder = %f.embedder,
                                why,
                                "roster face not usable here"
                            ),
                        }
                    }
                    ReadyOp::Enrol(ReadyEnrol {
                        name: name.clone(),
                        faces: ready,
                        retire: retire.clone(),
                    })
                }
            };
            entries.push(ReadyEntry {
                revision: e.revision,
                employee_id: c.employee_id.clone(),
                op,
            });
        }
        let ready = ReadyPage {
            since: page.since,
            up_to: page.up_to,
            head: page.head,
            entries,
        };
        let applied = self.store.apply_roster(&ready)?;
        if let Applied::Done { revision, steps } = &applied {
            let mut ops: Vec<GalleryOp> = Vec::with_capacity(steps.len());
            for s in steps {
                match s {
                    Step::Removed { employee_id } => {
                        ops.push(GalleryOp::Remove(employee_id.clone()))
                    }
                    // A learned face retired: the person's templates as the store now
                    // holds them (the faces just added among them).
                    Step::Added {
                        employee_id,
                        retired: true,
                        ..
                    } => {
                        ops.push(GalleryOp::Remove(employee_id.clone()));
                        let rows = self.recognizer.rows_of(&self.store, employee_id)?;
                        ops.push(GalleryOp::Add(employee_id.clone(), rows));
                    }
                    Step::Added {
                        employee_id, faces, ..
                    } => ops.push(GalleryOp::Add(
                        employee_id.clone(),
                        faces
                            .iter()
                            .filter_map(|id| made.iter().find(|(f, _)| f == id))
                            .flat_map(|(_, rows)| rows.iter().cloned())
                            .collect(),
                    )),
                }
            }
            self.recognizer.apply(&ops);
            info!(revision, changes = steps.len(), "roster page applied");
        }
        Ok(applied)
    }

    /// This terminal's template of a roster face: its own when the embedders agree,
    /// else re-embedded from the crop.
    fn make_face(&self, f: &Face) -> Result<Made, String> {
        let embedder = self.recognizer.embedder();
        let keep_crop = self.settings.storage.keep_enrolment_crops;
        if f.embedder == embedder.name()
            && let Some(npy) = &f.template
        {
            let rows = template::decode(npy, embedder.dim()).map_err(|e| e.to_string())?;
            return Ok(Made {
                face: ready(f, embedder.name(), npy.clone(), keep_crop),
                rows,
            });
        }
        let png = f
            .crop
            .as_ref()
            .ok_or("made by another embedder and no crop kept to re-embed")?;
        let (rows, npy) = super::reembed::embed_crop(embedder.as_ref(), png)?;
        Ok(Made {
            face: ready(f, embedder.name(), npy, keep_crop),
            rows,
        })
    }
}

fn ready(f: &Face, embedder: &str, npy: Vec<u8>, keep_crop: bool) -> ReadyFace {
    ReadyFace {
        face_id: f.face_id.clone(),
        embedder: embedder.to_owned(),
        npy,
        crop_png: f.crop.clone().filter(|_| keep_crop),
        quality: f.quality,
        device_id: f.device_id.clone(),
        learned: f.learned,
    }
}

impl Terminal {
    /// In a fleet: starts applying the site's pages in the background and returns the
    /// link the outbox publisher drives (it stops when the publisher drops it).
    pub(crate) fn start_roster(self: &Arc<Self>) -> Result<Option<RosterLink>, TerminalError> {
        let Some(fleet) = &self.settings.fleet else {
            return Ok(None);
        };
        let state = self.store.roster_state()?;
        let (pages, mut incoming) = mpsc::channel::<Page>(1);
        let (applied, applied_rx) = mpsc::channel::<u64>(1);
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(page) = incoming.recv().await {
                let revision = match me.apply_roster(page).await {
                    Ok(Applied::Done { revision, .. }) => Some(revision),
                    Ok(Applied::Gap { revision }) => {
                        warn!(revision, "roster page after a gap ignored; asking again");
                        Some(revision)
                    }
                    Ok(Applied::Stale) => None,
                    Err(e) => {
                        error!(error = %e, "applying a roster page failed; asking again");
                        None
                    }
                };
                let revision = match revision {
                    Some(r) => r,
                    None => me.store.roster_state().map(|s| s.revision).unwrap_or(0),
                };
                if applied.send(revision).await.is_err() {
                    break;
                }
            }
        });
        Ok(Some(RosterLink::new(
            &fleet.site,
            &fleet.device_id,
            self.embedder_name(),
            (state.revision, state.head),
            pages,
            applied_rx,
        )))
    }
}
