//! Users and their templates.

use chrono::Utc;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Store, StoreError, files, ts};
use attendance_wire::roster::wire;

/// One enrolment to store: a person (new or existing) and the faces that become their
/// templates, written in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct NewTemplate<'a> {
    /// Existing or chosen employee id; `None` allocates the next `EMPnnn`.
    pub(crate) employee_id: Option<&'a str>,
    /// Required when the user is new; ignored otherwise.
    pub(crate) name: Option<&'a str>,
    pub(crate) embedder: &'a str,
    pub(crate) device_id: Option<&'a str>,
    /// At least one.
    pub(crate) faces: &'a [NewFace<'a>],
    /// Made here by a person at this terminal (not re-embedded, not from the roster): in a
    /// fleet it gets a fleet-unique generated id and goes to the centre.
    pub(crate) publish: bool,
}

/// The files that make one template.
#[derive(Debug, Clone)]
pub(crate) struct NewFace<'a> {
    /// The `.npy` bytes.
    pub(crate) template: &'a [u8],
    /// The face crop (PNG) kept for re-embedding, if configured.
    pub(crate) crop_png: Option<&'a [u8]>,
    pub(crate) quality: f32,
    /// The face's fleet-wide id when it came from the roster; a new one otherwise.
    pub(crate) face_id: Option<&'a str>,
    /// Learned at the door (`store::learned`), not an enrolment photo.
    pub(crate) learned: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enrolled {
    pub(crate) employee_id: String,
    pub(crate) name: String,
    /// False when the templates were added to an existing user.
    pub(crate) new_user: bool,
    /// The first new template's id.
    pub(crate) template_id: i64,
    /// How many templates were added.
    pub(crate) templates: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UserRow {
    pub(crate) employee_id: String,
    pub(crate) name: String,
    pub(crate) profile_image: Option<String>,
    pub(crate) created_at: String,
    pub(crate) templates: i64,
    /// Of those, learned at the door (`DELETE /users/{id}/learned` erases them).
    pub(crate) learned: i64,
    /// Embedders the user's templates were made with.
    pub(crate) embedders: Vec<String>,
}

/// Files a deletion removed from the database, to unlink after commit.
#[derive(Debug, Default)]
pub(crate) struct Removed {
    pub(crate) users: usize,
    pub(crate) templates: usize,
    files: Vec<std::path::PathBuf>,
}

impl Removed {
    /// One template's files (its crop, if kept).
    pub(crate) fn add_files(&mut self, vector: &std::path::Path, crop: Option<std::path::PathBuf>) {
        self.templates += 1;
        self.files.push(vector.to_path_buf());
        self.files.extend(crop);
    }

    /// Adds another removal's counts and files.
    pub(crate) fn absorb(&mut self, other: Removed) {
        self.users += other.users;
        self.templates += other.templates;
        self.files.extend(other.files);
    }
}

impl Store {
    /// Adds a template, creating the user if needed, atomically: files are written (and
    /// synced) inside the transaction, so a crash leaves either everything or orphan
    /// files that [`Store::sweep_orphans`] removes at start-up.
    pub(crate) fn enrol(&self, t: &NewTemplate<'_>) -> Result<Enrolled, StoreError> {
        if t.faces.is_empty() {
            return Err(StoreError::NoFaces);
        }
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = ts(Utc::now());
        let (employee_id, name, new_user) = match t.employee_id {
            Some(id) => match user_name(&tx, id)? {
                Some(name) => (id.to_owned(), name, false),
                None => {
                    let name = t.name.ok_or_else(|| StoreError::NameRequired(id.into()))?;
                    tx.execute(
                        "INSERT INTO users (employee_id, name, created_at) VALUES (?1, ?2, ?3)",
                        params![id, name, now],
                    )?;
                    (id.to_owned(), name.to_owned(), true)
                }
            },
            None => {
                let name = t
                    .name
                    .ok_or_else(|| StoreError::NameRequired("new user".into()))?;
                let seq: i64 =
                    tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM users", [], |r| {
                        r.get(0)
                    })?;
                let fleet = self.fleet.as_ref().filter(|_| t.publish);
                let make = |seq: i64| match fleet {
                    // Site and device are unique in the fleet, so two doors enrolling while
                    // the broker is down cannot hand out one id twice.
                    Some(f) => format!("{}-{}-{seq:03}", f.site, f.device_id),
                    None => format!("EMP{seq:03}"),
                };
                let mut id = make(seq);
                // An admin may have chosen an id that looks generated: skip past it.
                let mut seq = seq;
                while user_name(&tx, &id)?.is_some() {
                    seq += 1;
                    id = make(seq);
                }
                tx.execute(
                    "INSERT INTO users (employee_id, name, seq, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, name, seq, now],
                )?;
                (id, name.to_owned(), true)
            }
        };
        let mut first_id = None;
        let mut sent = Vec::with_capacity(t.faces.len());
        for face in t.faces {
            let (row, face_id) =
                self.insert_face(&tx, &employee_id, t.embedder, t.device_id, face, &now)?;
            first_id.get_or_insert(row);
            sent.push(wire::Face {
                face_id,
                embedder: t.embedder.to_owned(),
                // Read from the sealed files when sent: the outbox holds no face data.
                template: None,
                crop: None,
                quality: face.quality,
                device_id: t.device_id.map(str::to_owned),
                learned: false,
            });
        }
        if let Some(f) = self.fleet.as_ref().filter(|_| t.publish) {
            let op = wire::Op::Enrol {
                name: name.clone(),
                faces: sent,
                retire: Vec::new(),
            };
            self.queue_change(&tx, f, &employee_id, op, &now)?;
        }
        let template_id = first_id.ok_or(StoreError::NoFaces)?;
        tx.commit()?;
        Ok(Enrolled {
            employee_id,
            name,
            new_user,
            template_id,
            templates: t.faces.len(),
        })
    }

    pub(crate) fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare(
            "SELECT u.employee_id, u.name, u.profile_image, u.created_at,
                    COUNT(t.id), COALESCE(GROUP_CONCAT(DISTINCT t.embedder), ''),
                    COALESCE(SUM(t.learned), 0)
             FROM users u LEFT JOIN templates t ON t.employee_id = u.employee_id
             GROUP BY u.id ORDER BY u.id",
        )?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn user(&self, employee_id: &str) -> Result<Option<UserRow>, StoreError> {
        let c = self.conn();
        Ok(c.query_row(
            "SELECT u.employee_id, u.name, u.profile_image, u.created_at,
                    COUNT(t.id), COALESCE(GROUP_CONCAT(DISTINCT t.embedder), ''),
                    COALESCE(SUM(t.learned), 0)
             FROM users u LEFT JOIN templates t ON t.employee_id = u.employee_id
             WHERE u.employee_id = ?1 GROUP BY u.id",
            [employee_id],
            user_row,
        )
        .optional()?)
    }

    /// Deletes a user and erases their templates and face images (right to erasure).
    /// Their attendance history stays.
    /// `publish`: deleted here by an admin, so in a fleet the deletion goes to the centre
    /// (and from there to every door).
    pub(crate) fn delete_user(
        &self,
        employee_id: &str,
        publish: bool,
    ) -> Result<Removed, StoreError> {
        let removed = {
            let mut c = self.conn();
            let tx = c.transaction()?;
            if user_name(&tx, employee_id)?.is_none() {
                return Err(StoreError::UserNotFound(employee_id.into()));
            }
            let r = self.remove_where(&tx, Some(employee_id))?;
            if let Some(f) = self.fleet.as_ref().filter(|_| publish) {
                self.queue_change(&tx, f, employee_id, wire::Op::Delete, &ts(Utc::now()))?;
            }
            tx.commit()?;
            r
        };
        self.unlink(&removed)?;
        Ok(removed)
    }

    /// Deletes every user and template (the spec's `reset_users.py`); attendance stays.
    pub(crate) fn reset_users(&self) -> Result<Removed, StoreError> {
        let removed = {
            let mut c = self.conn();
            let tx = c.transaction()?;
            let r = self.remove_where(&tx, None)?;
            tx.commit()?;
            r
        };
        self.unlink(&removed)?;
        Ok(removed)
    }

    pub(super) fn remove_where(
        &self,
        tx: &Transaction<'_>,
        who: Option<&str>,
    ) -> Result<Removed, StoreError> {
        let mut r = Removed::default();
        {
            let mut stmt = tx.prepare(
                "SELECT vector_path, crop_path FROM templates WHERE ?1 IS NULL OR employee_id = ?1",
            )?;
            let rows = stmt.query_map([who], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (vector, crop) = row?;
                r.add_files(
                    &self.encoding_dir.join(vector),
                    crop.map(|c| self.image_dir.join(c)),
                );
            }
        }
        tx.execute(
            "DELETE FROM templates WHERE ?1 IS NULL OR employee_id = ?1",
            [who],
        )?;
        r.users = tx.execute(
            "DELETE FROM users WHERE ?1 IS NULL OR employee_id = ?1",
            [who],
        )?;
        Ok(r)
    }

    pub(super) fn unlink(&self, r: &Removed) -> Result<(), StoreError> {
        for f in &r.files {
            files::remove(f)?;
        }
        Ok(())
    }
}

pub(super) fn user_name(
    tx: &Transaction<'_>,
    employee_id: &str,
) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT name FROM users WHERE employee_id = ?1",
        [employee_id],
        |r| r.get(0),
    )
    .optional()
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    let embedders: String = r.get(5)?;
    Ok(UserRow {
        employee_id: r.get(0)?,
        name: r.get(1)?,
        profile_image: r.get(2)?,
        created_at: r.get(3)?,
        templates: r.get(4)?,
        learned: r.get(6)?,
        embedders: embedders
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    const FACE: NewFace<'static> = NewFace {
        template: b"npy",
        crop_png: Some(b"png"),
        quality: 0.8,
        face_id: None,
        learned: false,
    };

    fn t<'a>(id: Option<&'a str>, name: Option<&'a str>) -> NewTemplate<'a> {
        NewTemplate {
            employee_id: id,
            name,
            embedder: "hog-v1",
            device_id: Some("K1"),
            faces: std::slice::from_ref(&FACE),
            publish: true,
        }
    }

    #[test]
    fn ids_are_allocated_in_sequence_and_templates_added() {
        let s = temp_store();
        let a = s.store.enrol(&t(None, Some("홍길동"))).unwrap();
        let b = s.store.enrol(&t(None, Some("김철수"))).unwrap();
        assert_eq!(
            (a.employee_id.as_str(), b.employee_id.as_str()),
            ("EMP001", "EMP002")
        );
        assert!(a.new_user);
        let again = s.store.enrol(&t(Some("EMP001"), None)).unwrap();
        assert!(!again.new_user);
        assert_eq!(again.name, "홍길동");
        let users = s.store.users().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].templates, 2);
        assert_eq!(users[0].embedders, vec!["hog-v1".to_owned()]);
        assert_eq!(s.store.templates("hog-v1", None).unwrap().len(), 3);
        assert!(s.store.templates("other", None).unwrap().is_empty());
        assert_eq!(s.store.users_without("other").unwrap().len(), 2);
    }

    #[test]
    fn chosen_ids_need_a_name_and_generated_ids_skip_them() {
        let s = temp_store();
        assert!(matches!(
            s.store.enrol(&t(Some("X9"), None)),
            Err(StoreError::NameRequired(_))
        ));
        s.store
            .enrol(&t(Some("EMP001"), Some("Admin pick")))
            .unwrap();
        let next = s.store.enrol(&t(None, Some("Auto"))).unwrap();
        assert_eq!(next.employee_id, "EMP002");
    }

    #[test]
    fn delete_erases_files_and_keeps_nothing_of_the_user() {
        let s = temp_store();
        let a = s.store.enrol(&t(None, Some("A"))).unwrap();
        s.store.enrol(&t(None, Some("B"))).unwrap();
        let files_before = files::list(s.store.encoding_dir()).unwrap().len()
            + files::list(s.store.image_dir()).unwrap().len();
        assert_eq!(files_before, 4);
        let r = s.store.delete_user(&a.employee_id, true).unwrap();
        assert_eq!((r.users, r.templates), (1, 1));
        assert_eq!(files::list(s.store.encoding_dir()).unwrap().len(), 1);
        assert_eq!(files::list(s.store.image_dir()).unwrap().len(), 1);
        assert!(s.store.user(&a.employee_id).unwrap().is_none());
        assert!(matches!(
            s.store.delete_user(&a.employee_id, true),
            Err(StoreError::UserNotFound(_))
        ));
        let r = s.store.reset_users().unwrap();
        assert_eq!(r.users, 1);
        assert!(files::list(s.store.encoding_dir()).unwrap().is_empty());
    }

    #[test]
    fn orphan_files_are_swept() {
        let s = temp_store();
        s.store.enrol(&t(None, Some("A"))).unwrap();
        files::write_atomic(s.store.encoding_dir(), "EMP999_dead.npy", b"x").unwrap();
        assert_eq!(s.store.sweep_orphans().unwrap(), 1);
        assert_eq!(files::list(s.store.encoding_dir()).unwrap().len(), 1);
    }
}
