//! Templates learned at the door (`attendance_face::learn` decides; this keeps them):
//! one more template of a recognised person, written with the learned template it
//! replaces in one transaction and, in a fleet, queued for the centre like an enrolment
//! so every door of the site learns it too.

use chrono::Utc;
use rusqlite::{OptionalExtension, Transaction, params};

use super::users::{NewFace, Removed, user_name};
use super::{Store, StoreError, ts};
use attendance_wire::roster::wire;

/// A lesson to keep.
#[derive(Debug, Clone)]
pub(crate) struct NewLesson<'a> {
    pub(crate) employee_id: &'a str,
    pub(crate) embedder: &'a str,
    /// The probe as `.npy` bytes (no crop: a learned face is this embedder's alone).
    pub(crate) template: &'a [u8],
    pub(crate) quality: f32,
    /// The learned faces it replaces, by face id.
    pub(crate) retire: &'a [&'a str],
}

impl Store {
    /// Keeps a lesson; the new face's id. The person must still be enrolled (they may
    /// have been deleted while the lesson was decided).
    pub(crate) fn learn(&self, l: &NewLesson<'_>) -> Result<String, StoreError> {
        let (face_id, removed) = {
            let mut c = self.conn();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let name = user_name(&tx, l.employee_id)?
                .ok_or_else(|| StoreError::UserNotFound(l.employee_id.into()))?;
            let now = ts(Utc::now());
            let device = self.fleet.as_ref().map(|f| f.device_id.as_str());
            let face = NewFace {
                template: l.template,
                crop_png: None,
                quality: l.quality,
                face_id: None,
                learned: true,
            };
            let (_, face_id) =
                self.insert_face(&tx, l.employee_id, l.embedder, device, &face, &now)?;
            let retire: Vec<String> = l.retire.iter().map(|r| (*r).to_owned()).collect();
            let removed = self.retire(&tx, l.employee_id, &retire)?;
            if let Some(f) = &self.fleet {
                let op = wire::Op::Enrol {
                    name,
                    faces: vec![wire::Face {
                        face_id: face_id.clone(),
                        embedder: l.embedder.to_owned(),
                        // Read from the sealed file when sent.
                        template: None,
                        crop: None,
                        quality: l.quality,
                        device_id: device.map(str::to_owned),
                        learned: true,
                    }],
                    retire,
                };
                self.queue_change(&tx, f, l.employee_id, op, &now)?;
            }
            tx.commit()?;
            (face_id, removed)
        };
        self.unlink(&removed)?;
        Ok(face_id)
    }

    /// Erases every learned template of a person (their enrolment photos stay): after
    /// a wrong lesson is suspected, or when the person withdraws consent to updates. In
    /// a fleet the site's doors drop them too. How many went.
    pub(crate) fn forget_learned(&self, employee_id: &str) -> Result<usize, StoreError> {
        let removed = {
            let mut c = self.conn();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let name = user_name(&tx, employee_id)?
                .ok_or_else(|| StoreError::UserNotFound(employee_id.into()))?;
            let ids: Vec<String> = tx
                .prepare(
                    "SELECT face_id FROM templates
                     WHERE employee_id = ?1 AND learned = 1 AND face_id IS NOT NULL",
                )?
                .query_map([employee_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let removed = self.retire(&tx, employee_id, &ids)?;
            if let Some(f) = self.fleet.as_ref().filter(|_| !ids.is_empty()) {
                let op = wire::Op::Enrol {
                    name,
                    faces: Vec::new(),
                    retire: ids,
                };
                self.queue_change(&tx, f, employee_id, op, &ts(Utc::now()))?;
            }
            tx.commit()?;
            removed
        };
        self.unlink(&removed)?;
        Ok(removed.templates)
    }

    /// Removes these learned faces of the person (an enrolment photo, or another
    /// person's face, named here stays), in the caller's transaction; the files to
    /// unlink after commit.
    pub(super) fn retire(
        &self,
        tx: &Transaction<'_>,
        employee_id: &str,
        face_ids: &[String],
    ) -> Result<Removed, StoreError> {
        let mut r = Removed::default();
        for id in face_ids {
            let gone: Option<(String, Option<String>)> = tx
                .query_row(
                    "DELETE FROM templates WHERE face_id = ?1 AND employee_id = ?2 AND learned = 1
                     RETURNING vector_path, crop_path",
                    params![id, employee_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            if let Some((vector, crop)) = gone {
                r.add_files(
                    &self.encoding_dir.join(vector),
                    crop.map(|c| self.image_dir.join(c)),
                );
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewTemplate;
    use crate::store::testing::{temp_fleet_store, temp_store};

    fn enrol(s: &Store) -> String {
        let face = NewFace {
            template: b"npy",
            crop_png: Some(b"png"),
            quality: 0.9,
            face_id: None,
            learned: false,
        };
        s.enrol(&NewTemplate {
            employee_id: None,
            name: Some("홍길동"),
            embedder: "hog-v1",
            device_id: None,
            faces: &[face],
            publish: true,
        })
        .unwrap()
        .employee_id
    }

    fn lesson<'a>(id: &'a str, retire: &'a [&'a str]) -> NewLesson<'a> {
        NewLesson {
            employee_id: id,
            embedder: "hog-v1",
            template: b"learned",
            quality: 0.7,
            retire,
        }
    }

    #[test]
    fn a_lesson_is_a_marked_template_and_retires_only_learned_faces() {
        let t = temp_store();
        let s = &t.store;
        let id = enrol(s);
        let first = s.learn(&lesson(&id, &[])).unwrap();
        let rows = s.templates("hog-v1", Some(&id)).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.learned).collect::<Vec<_>>(),
            [false, true]
        );
        let photo = rows[0].face_id.clone().unwrap();
        // Naming the enrolment photo retires nothing; naming the first lesson does.
        s.learn(&lesson(&id, &[&photo])).unwrap();
        assert_eq!(s.templates("hog-v1", Some(&id)).unwrap().len(), 3);
        let files = || std::fs::read_dir(s.encoding_dir()).unwrap().count();
        let before = files();
        s.learn(&lesson(&id, &[&first])).unwrap();
        let rows = s.templates("hog-v1", Some(&id)).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.face_id.as_deref() != Some(first.as_str()))
        );
        assert_eq!(files(), before, "the retired face's file stays behind");
        // Forgetting the lessons leaves the enrolment photo alone, files and all.
        assert_eq!(s.forget_learned(&id).unwrap(), 2);
        let rows = s.templates("hog-v1", Some(&id)).unwrap();
        assert_eq!((rows.len(), rows[0].learned), (1, false));
        assert_eq!(files(), before - 2);
        assert_eq!(s.forget_learned(&id).unwrap(), 0);
        // Somebody deleted meanwhile learns nothing.
        s.delete_user(&id, false).unwrap();
        assert!(matches!(
            s.learn(&lesson(&id, &[])),
            Err(StoreError::UserNotFound(_))
        ));
    }

    #[test]
    fn in_a_fleet_a_lesson_goes_to_the_centre_as_a_learned_face_with_its_retirement() {
        let t = temp_fleet_store();
        let s = &t.store;
        let id = enrol(s);
        let first = s.learn(&lesson(&id, &[])).unwrap();
        s.learn(&lesson(&id, &[&first])).unwrap();
        let changes: Vec<wire::Change> = s
            .outbox_next(10)
            .unwrap()
            .iter()
            .map(|q| ciborium::from_reader(&q.payload[..]).unwrap())
            .collect();
        let ops: Vec<&wire::Op> = changes.iter().map(|c| &c.op).collect();
        assert_eq!(ops.len(), 3, "{ops:?}");
        let wire::Op::Enrol { faces, retire, .. } = ops[2] else {
            panic!("{ops:?}")
        };
        assert!(faces[0].learned && faces[0].crop.is_none());
        assert_eq!(retire, &[first]);
        // Forgetting them tells the centre which faces go.
        let second = s.templates("hog-v1", Some(&id)).unwrap()[1].face_id.clone();
        s.forget_learned(&id).unwrap();
        let last = s.outbox_next(10).unwrap().pop().unwrap();
        let change: wire::Change = ciborium::from_reader(&last.payload[..]).unwrap();
        assert!(
            matches!(&change.op, wire::Op::Enrol { faces, retire, .. }
                if faces.is_empty() && Some(retire) == second.map(|f| vec![f]).as_ref()),
            "{change:?}"
        );
    }
}
