//! The in-memory gallery of the active embedder, kept in step with the store.

use std::sync::{Arc, RwLock};

use tracing::warn;

use crate::answer::MatchMode;
use crate::store::templates::TemplateRow;
use crate::store::{Store, StoreError};
use attendance_face::template;
use attendance_face::{Decision, Embedder, Embedding, Gallery, MatchRule, Nearest};

/// One step of a roster page, for the gallery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GalleryOp {
    Add(String, Vec<Embedding>),
    Remove(String),
}

/// Gallery plus decision rule for one embedder.
pub(crate) struct Recognizer {
    embedder: Arc<dyn Embedder>,
    gallery: RwLock<Gallery>,
    rule: RwLock<MatchRule>,
    /// `PRAGMA data_version` when the gallery was last loaded.
    loaded_version: RwLock<i64>,
}

impl Recognizer {
    pub(crate) fn new(embedder: Arc<dyn Embedder>, rule: MatchRule) -> Self {
        Self {
            gallery: RwLock::new(Gallery::for_embedder(&*embedder)),
            embedder,
            rule: RwLock::new(rule),
            loaded_version: RwLock::new(i64::MIN),
        }
    }

    pub(crate) fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub(crate) fn rule(&self) -> MatchRule {
        *self.rule.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_rule(&self, rule: MatchRule) {
        *self.rule.write().unwrap_or_else(|p| p.into_inner()) = rule;
    }

    /// (templates rows, distinct people) in the gallery.
    pub(crate) fn size(&self) -> (usize, usize) {
        let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.people())
    }

    /// Rebuilds the gallery from the store's templates of this embedder; returns how
    /// many loaded. Template files that are missing or unreadable are logged (their
    /// people cannot be recognised until re-enrolled).
    pub(crate) fn load(&self, store: &Store) -> Result<usize, StoreError> {
        let version = store.data_version()?;
        let mut gallery = Gallery::for_embedder(&*self.embedder);
        let mut loaded = 0;
        for (t, rows) in self.read(store, None)? {
            for e in &rows {
                // Dimension checked by decode.
                let _ = gallery.add(&t.employee_id, e);
            }
            loaded += 1;
        }
        *self.gallery.write().unwrap_or_else(|p| p.into_inner()) = gallery;
        *self
            .loaded_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = version;
        Ok(loaded)
    }

    /// Makes the gallery hold one person's templates as the store does (after lessons
    /// are kept or erased), under one write lock.
    pub(crate) fn reload_person(&self, store: &Store, employee_id: &str) -> Result<(), StoreError> {
        let rows = self.rows_of(store, employee_id)?;
        let id = employee_id.to_owned();
        self.apply(&[GalleryOp::Remove(id.clone()), GalleryOp::Add(id, rows)]);
        Ok(())
    }

    /// One person's templates as the store holds them.
    pub(crate) fn rows_of(
        &self,
        store: &Store,
        employee_id: &str,
    ) -> Result<Vec<Embedding>, StoreError> {
        Ok(self
            .read(store, Some(employee_id))?
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .collect())
    }

    /// The store's templates of this embedder (everyone's, or one person's) with their
    /// rows; unreadable ones logged and left out.
    pub(crate) fn read(
        &self,
        store: &Store,
        of: Option<&str>,
    ) -> Result<Vec<(TemplateRow, Vec<Embedding>)>, StoreError> {
        let mut read = Vec::new();
        for t in store.templates(self.embedder.name(), of)? {
            let path = store.encoding_dir().join(&t.vector_path);
            let decoded = store
                .read_file(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| template::decode(&b, self.embedder.dim()).map_err(|e| e.to_string()));
            match decoded {
                Ok(rows) => read.push((t, rows)),
                Err(e) => {
                    warn!(employee_id = %t.employee_id, file = %t.vector_path, error = %e, "template unreadable");
                }
            }
        }
        Ok(read)
    }

    /// Reloads when another process (the admin CLI) changed the database.
    pub(crate) fn refresh_if_changed(&self, store: &Store) -> Result<bool, StoreError> {
        let now = store.data_version()?;
        if now
            == *self
                .loaded_version
                .read()
                .unwrap_or_else(|p| p.into_inner())
        {
            return Ok(false);
        }
        self.load(store)?;
        Ok(true)
    }

    pub(crate) fn nearest(&self, probe: &Embedding) -> Option<Nearest> {
        self.gallery
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .nearest(probe)
    }

    /// The deciding distance (the nearest person's for 1:N, the claimed person's for
    /// 1:1) and the decision under the current rule.
    pub(crate) fn decide(&self, probe: &Embedding, mode: &MatchMode) -> (Option<f32>, Decision) {
        match mode {
            MatchMode::Identify => {
                let nearest = self.nearest(probe);
                (
                    nearest.as_ref().map(|n| n.distance),
                    self.rule().decide(nearest),
                )
            }
            MatchMode::Verify { employee_id } => {
                let d = self
                    .gallery
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .distance_to(employee_id, probe);
                (d, self.rule().verify(employee_id, d))
            }
        }
    }

    /// Applies a page's steps under one write lock: a match sees all of them or none.
    pub(crate) fn apply(&self, ops: &[GalleryOp]) {
        let mut g = self.gallery.write().unwrap_or_else(|p| p.into_inner());
        for op in ops {
            match op {
                GalleryOp::Add(id, rows) => {
                    for r in rows {
                        let _ = g.add(id, r);
                    }
                }
                GalleryOp::Remove(id) => g.remove(id),
            }
        }
    }

    pub(crate) fn remove(&self, employee_id: &str) {
        self.gallery
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(employee_id);
    }

    pub(crate) fn clear(&self) {
        *self.gallery.write().unwrap_or_else(|p| p.into_inner()) =
            Gallery::for_embedder(&*self.embedder);
    }
}
