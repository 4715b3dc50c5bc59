//! Templates: the rows the galleries load, and writing one with its files.

use rusqlite::{Transaction, params};

use super::users::NewFace;
use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TemplateRow {
    pub(crate) id: i64,
    pub(crate) employee_id: String,
    pub(crate) vector_path: String,
    pub(crate) crop_path: Option<String>,
    pub(crate) embedder: String,
    /// None for templates stored before the fleet roster (schema 3).
    pub(crate) face_id: Option<String>,
    /// Learned at the door (`store::learned`), not an enrolment photo.
    pub(crate) learned: bool,
}

/// An enrolment crop on disk and the template it was kept with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredCrop {
    pub(crate) employee_id: String,
    pub(crate) path: std::path::PathBuf,
    pub(crate) quality: f32,
    pub(crate) device_id: Option<String>,
}

impl Store {
    /// Templates made with `embedder` (of one person, or everyone's), in enrolment order.
    pub(crate) fn templates(
        &self,
        embedder: &str,
        of: Option<&str>,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(
            "SELECT id, employee_id, vector_path, crop_path, embedder, face_id, learned
             FROM templates WHERE embedder = ?1 AND (?2 IS NULL OR employee_id = ?2)
             ORDER BY id",
        )?;
        let rows = stmt.query_map(rusqlite::params![embedder, of], |r| {
            Ok(TemplateRow {
                id: r.get(0)?,
                employee_id: r.get(1)?,
                vector_path: r.get(2)?,
                crop_path: r.get(3)?,
                embedder: r.get(4)?,
                face_id: r.get(5)?,
                learned: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Employees with no template for `embedder`: they cannot be recognised by it.
    pub(crate) fn users_without(&self, embedder: &str) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        // `NOT IN` over one pass of the embedder's templates: a correlated `NOT EXISTS`
        // let SQLite scan them once per user (7 s for /health with 9,000 people).
        let mut stmt = c.prepare(
            "SELECT employee_id FROM users WHERE employee_id NOT IN
               (SELECT employee_id FROM templates WHERE embedder = ?1)
             ORDER BY id",
        )?;
        let rows = stmt.query_map([embedder], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Enrolment crops kept with other embedders' templates, for the users who have no
    /// template for `embedder`: what re-embedding after an embedder change works from.
    pub(crate) fn crops_without(&self, embedder: &str) -> Result<Vec<StoredCrop>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare(
            "SELECT employee_id, crop_path, quality_score, device_id FROM templates
             WHERE crop_path IS NOT NULL AND employee_id NOT IN
               (SELECT employee_id FROM templates WHERE embedder = ?1)
             ORDER BY id",
        )?;
        let rows = stmt.query_map([embedder], |r| {
            Ok(StoredCrop {
                employee_id: r.get(0)?,
                path: self.image_dir.join(r.get::<_, String>(1)?),
                quality: r.get::<_, Option<f64>>(2)?.unwrap_or(0.0) as f32,
                device_id: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Inserts one template row and writes its files (synced, inside the caller's
    /// transaction); returns the row id and the face id.
    pub(super) fn insert_face(
        &self,
        tx: &Transaction<'_>,
        employee_id: &str,
        embedder: &str,
        device_id: Option<&str>,
        face: &NewFace<'_>,
        now: &str,
    ) -> Result<(i64, String), StoreError> {
        let face_id = face
            .face_id
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let stem = format!("{employee_id}_{}", uuid::Uuid::now_v7().simple());
        let vector_path = format!("{stem}.npy");
        let crop_path = face.crop_png.map(|_| format!("{stem}.png"));
        tx.execute(
            "INSERT INTO templates (employee_id, vector_path, crop_path, embedder, quality_score, device_id, created_at, face_id, learned)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![employee_id, vector_path, crop_path, embedder, face.quality, device_id, now, face_id, face.learned],
        )?;
        let row = tx.last_insert_rowid();
        tx.execute(
            "UPDATE users SET profile_image = ?2 WHERE employee_id = ?1 AND profile_image IS NULL",
            params![employee_id, vector_path],
        )?;
        self.write_file(&self.encoding_dir, &vector_path, face.template)?;
        if let (Some(png), Some(name)) = (face.crop_png, &crop_path) {
            self.write_file(&self.image_dir, name, png)?;
        }
        Ok((row, face_id))
    }
}
