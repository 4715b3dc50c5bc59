//! `attendance-uplink roster ...`: HR's side of the roster of record. Changes made here
//! are written to MySQL like a terminal's (the site's next revision, a tombstone for a
//! deletion); the running uplink publishes the new head and every door of the site picks
//! them up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_async::TxOpts;
use mysql_async::prelude::*;

use super::config::UplinkConfig;
use super::roster::{Outcome, move_person, write_change};
use super::sink::{Sink, SinkError};
use attendance_core::config::{id_rule, is_id};
use attendance_face::{DecodeLimits, FacePipeline, PipelineError, encode, template};
use attendance_wire::roster::check::MAX_FACES;
use attendance_wire::roster::wire::{Change, Face, Op};

#[derive(Debug, thiserror::Error)]
pub enum RosterAdminError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("face.embedder: {0}")]
    Embedder(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no person {0} in the roster")]
    NotFound(String),
}

/// The photo a CSV row names, inside `dir`: a relative path with no `..`, and not a
/// link out of it (HR's spreadsheet must not make the uplink read `/etc/shadow`'s
/// neighbours into the roster).
fn photo_within(dir: &Path, named: &str) -> Result<PathBuf, String> {
    let rel = Path::new(named);
    if !rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "photo {named:?} must be a path inside --photos (no leading /, no ..)"
        ));
    }
    let (root, path) = (dir.canonicalize(), dir.join(rel).canonicalize());
    match (root, path) {
        (Ok(root), Ok(path)) if path.starts_with(&root) => Ok(path),
        (Ok(_), Ok(_)) => Err(format!("photo {named:?} leads out of --photos")),
        (_, Err(e)) => Err(format!("{}: {e}", dir.join(rel).display())),
        (Err(e), _) => Err(format!("{}: {e}", dir.display())),
    }
}

/// One person to enrol centrally.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub employee_id: String,
    pub name: String,
    pub photos: Vec<PathBuf>,
}

/// What `roster import` did.
#[derive(Debug, Default, PartialEq)]
pub struct ImportReport {
    pub enrolled: usize,
    /// `(line, why)` of the rows left out.
    pub refused: Vec<(u64, String)>,
}

/// The roster of record, opened for HR's commands.
pub struct CentralRoster {
    sink: Sink,
    site: String,
    pipeline: Option<FacePipeline>,
    face: attendance_face::FaceSettings,
}

impl CentralRoster {
    /// Applies pending migrations first, as `run` would.
    pub async fn open(cfg: &UplinkConfig, site: &str) -> Result<CentralRoster, RosterAdminError> {
        if !is_id(site) {
            return Err(RosterAdminError::Invalid(format!("site {}", id_rule(site))));
        }
        let sink = Sink::new(&cfg.mysql);
        sink.migrate().await?;
        Ok(CentralRoster {
            sink,
            site: site.to_owned(),
            pipeline: None,
            face: cfg.face.clone(),
        })
    }

    pub async fn close(self) {
        self.sink.close().await;
    }

    /// The photo pipeline, loaded on first use (the CNN's model files are read once).
    fn pipeline(&mut self) -> Result<&FacePipeline, RosterAdminError> {
        if self.pipeline.is_none() {
            let embedder = self
                .face
                .embedder
                .load(&self.face.models_dir)
                .map_err(RosterAdminError::Embedder)?;
            self.pipeline = Some(FacePipeline::new(
                self.face.pipeline,
                DecodeLimits::default(),
                Arc::clone(&embedder),
            ));
        }
        Ok(self.pipeline.as_ref().expect("loaded above"))
    }

    /// A face from a photo: the template of this uplink's embedder, and the crop every
    /// door with another embedder re-embeds.
    fn face_of(&mut self, photo: &Path) -> Result<Face, String> {
        let bytes = std::fs::read(photo).map_err(|e| format!("{}: {e}", photo.display()))?;
        let pipeline = self.pipeline().map_err(|e| e.to_string())?;
        let accepted = pipeline.accept(&bytes).map_err(|e| match e {
            PipelineError::Rejected(r) => format!(
                "{}: no usable face ({})",
                photo.display(),
                r.reason().as_str()
            ),
            PipelineError::Decode(d) => format!("{}: {d}", photo.display()),
        })?;
        let embedder = pipeline.embedder();
        let rows = embedder.enrol(&accepted.crop);
        let npy = template::encode(&rows).map_err(|e| e.to_string())?;
        let png = encode::png(&accepted.crop.rgb).map_err(|e| e.to_string())?;
        Ok(Face {
            face_id: uuid::Uuid::now_v7().to_string(),
            embedder: embedder.name().to_owned(),
            template: Some(npy),
            crop: Some(png),
            quality: accepted.quality.score(),
            device_id: None,
            learned: false,
        })
    }

    async fn write(&self, employee_id: &str, op: Op) -> Result<u64, RosterAdminError> {
        let change = Change {
            change_id: uuid::Uuid::now_v7().to_string(),
            employee_id: employee_id.to_owned(),
            site: self.site.clone(),
            device_id: None,
            ts: attendance_wire::event::ts(chrono::Utc::now()),
            op,
        };
        change
            .validate()
            .map_err(|e| RosterAdminError::Invalid(e.to_string()))?;
        let mut tx = self
            .sink
            .pool()
            .start_transaction(TxOpts::default())
            .await?;
        let revision = match write_change(&mut tx, &change).await? {
            Outcome::Written(r) => r,
            Outcome::Seen => 0,
            Outcome::Foreign { owner } => {
                return Err(RosterAdminError::Invalid(format!(
                    "{employee_id} belongs to site {owner}, not {site}: a person moves with \
                     `attendance-uplink roster --site {owner} move {employee_id} --to {site}`",
                    site = self.site
                )));
            }
        };
        tx.commit().await?;
        Ok(revision)
    }

    /// Moves a person of this site to `to` (their faces go with them): this site's
    /// doors forget them, `to`'s doors learn them. Returns the revisions at both.
    pub async fn move_to(
        &self,
        employee_id: &str,
        to: &str,
    ) -> Result<(u64, u64), RosterAdminError> {
        if !is_id(to) {
            return Err(RosterAdminError::Invalid(format!("site {}", id_rule(to))));
        }
        if to == self.site {
            return Err(RosterAdminError::Invalid(format!(
                "{employee_id} is at {to} already"
            )));
        }
        let mut tx = self
            .sink
            .pool()
            .start_transaction(TxOpts::default())
            .await?;
        let moved = move_person(&mut tx, employee_id, &self.site, to).await?;
        let Some(revisions) = moved else {
            return Err(RosterAdminError::NotFound(format!(
                "{employee_id} (at site {})",
                self.site
            )));
        };
        tx.commit().await?;
        Ok(revisions)
    }

    /// Enrols (or adds faces to) a person; returns the revision.
    pub async fn enrol(&mut self, p: &NewPerson) -> Result<u64, RosterAdminError> {
        if p.photos.is_empty() || p.photos.len() > MAX_FACES {
            return Err(RosterAdminError::Invalid(format!(
                "1 to {MAX_FACES} photos per person"
            )));
        }
        let mut faces = Vec::with_capacity(p.photos.len());
        for photo in &p.photos {
            faces.push(self.face_of(photo).map_err(RosterAdminError::Invalid)?);
        }
        self.write(
            &p.employee_id,
            Op::Enrol {
                name: p.name.clone(),
                faces,
                retire: Vec::new(),
            },
        )
        .await
    }

    /// Deletes a person of this site everywhere; returns the revision.
    pub async fn delete(&self, employee_id: &str) -> Result<u64, RosterAdminError> {
        let mut c = self.sink.pool().get_conn().await?;
        let found: Option<String> = c
            .exec_first(
                "SELECT site FROM roster_people WHERE employee_id = ?",
                (employee_id,),
            )
            .await?;
        drop(c);
        match found {
            Some(site) if site == self.site => self.write(employee_id, Op::Delete).await,
            Some(site) => Err(RosterAdminError::Invalid(format!(
                "{employee_id} belongs to site {site}, not {}",
                self.site
            ))),
            None => Err(RosterAdminError::NotFound(employee_id.to_owned())),
        }
    }

    /// HR's bulk case: a CSV with `employee_id,name,photo` (a header line, photos named
    /// relative to `photos`). Each row is enrolled on its own: a bad row is reported
    /// with its line and the others go in.
    pub async fn import(
        &mut self,
        csv: &Path,
        photos: &Path,
        out: &mut impl Write,
    ) -> Result<ImportReport, RosterAdminError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_path(csv)
            .map_err(|e| RosterAdminError::Invalid(format!("{}: {e}", csv.display())))?;
        let mut report = ImportReport::default();
        for row in reader.records() {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    report.refused.push((line, e.to_string()));
                    continue;
                }
            };
            let line = row.position().map_or(0, |p| p.line());
            let person = match (row.get(0), row.get(1), row.get(2)) {
                (Some(id), Some(name), Some(photo)) if !photo.is_empty() => {
                    match photo_within(photos, photo) {
                        Ok(path) => NewPerson {
                            employee_id: id.to_owned(),
                            name: name.to_owned(),
                            photos: vec![path],
                        },
                        Err(why) => {
                            report.refused.push((line, why));
                            continue;
                        }
                    }
                }
                _ => {
                    report
                        .refused
                        .push((line, "expected employee_id,name,photo".into()));
                    continue;
                }
            };
            match self.enrol(&person).await {
                Ok(revision) => {
                    writeln!(
                        out,
                        "line {line}: {} enrolled (revision {revision})",
                        person.employee_id
                    )?;
                    report.enrolled += 1;
                }
                Err(e @ (RosterAdminError::Invalid(_) | RosterAdminError::Embedder(_))) => {
                    report.refused.push((line, e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        for (line, why) in &report.refused {
            writeln!(out, "line {line}: not imported: {why}")?;
        }
        Ok(report)
    }

    /// One line per person of the site.
    pub async fn list(&self, out: &mut impl Write) -> Result<(), RosterAdminError> {
        let mut c = self.sink.pool().get_conn().await?;
        let rows: Vec<(String, String, u64, u64, Option<String>)> = c
            .exec(
                "SELECT p.employee_id, p.name, p.revision, COUNT(f.face_id),
                        GROUP_CONCAT(DISTINCT f.embedder ORDER BY f.embedder)
                 FROM roster_people p LEFT JOIN roster_faces f ON f.employee_id = p.employee_id
                 WHERE p.site = ? GROUP BY p.employee_id, p.name, p.revision
                 ORDER BY p.employee_id",
                (self.site.as_str(),),
            )
            .await?;
        writeln!(
            out,
            "{:<20} {:<24} {:>8} {:>5}  EMBEDDERS",
            "EMPLOYEE_ID", "NAME", "REVISION", "FACES"
        )?;
        for (id, name, revision, faces, embedders) in rows {
            writeln!(
                out,
                "{id:<20} {name:<24} {revision:>8} {faces:>5}  {}",
                embedders.unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_photos_stay_inside_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(photos.join("team")).unwrap();
        std::fs::write(photos.join("team/a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.jpg"), photos.join("link.jpg")).unwrap();
        assert!(photo_within(&photos, "team/a.jpg").is_ok());
        for bad in [
            "../secret.jpg",
            "team/../../secret.jpg",
            "/etc/passwd",
            "link.jpg",
        ] {
            let e = photo_within(&photos, bad).unwrap_err();
            assert!(e.contains("--photos"), "{bad}: {e}");
        }
        assert!(photo_within(&photos, "missing.jpg").is_err());
    }
}
