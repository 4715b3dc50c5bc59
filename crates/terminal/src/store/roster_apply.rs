//! Applying the site's roster pages to the terminal's store: the page and the revision it
//! brings the terminal to in one transaction, so a crash leaves the roster before or
//! after a page, never between.

use chrono::Utc;
use rusqlite::{Transaction, params};

use super::users::Removed;
use super::{NewFace, Store, StoreError, ts};

/// A page ready to apply: face data already checked and made into templates of this
/// terminal's embedder (re-embedded where needed), so the transaction does no compute.
#[derive(Debug, Clone)]
pub(crate) struct ReadyPage {
    pub(crate) since: u64,
    pub(crate) up_to: u64,
    pub(crate) head: u64,
    pub(crate) entries: Vec<ReadyEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReadyEntry {
    pub(crate) revision: u64,
    pub(crate) employee_id: String,
    pub(crate) op: ReadyOp,
}

/// What an entry does here.
#[derive(Debug, Clone)]
pub(crate) enum ReadyOp {
    Enrol(ReadyEnrol),
    Delete,
    /// Not applied (why): recorded, and the revision moves past it.
    Refused(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ReadyEnrol {
    pub(crate) name: String,
    pub(crate) faces: Vec<ReadyFace>,
    /// Learned faces of the person that go (a face learned since at some door replaced
    /// them).
    pub(crate) retire: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReadyFace {
    pub(crate) face_id: String,
    pub(crate) embedder: String,
    pub(crate) npy: Vec<u8>,
    pub(crate) crop_png: Option<Vec<u8>>,
    pub(crate) quality: f32,
    pub(crate) device_id: Option<String>,
    pub(crate) learned: bool,
}

/// What applying a page did, in entry order, for the gallery to follow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Applied {
    /// The page was older than what is applied (an answer to a repeated request).
    Stale,
    /// The page starts after the applied revision: something in between is missing.
    Gap { revision: u64 },
    Done {
        revision: u64,
        /// `(employee_id, face ids added)` or the person removed, in order.
        steps: Vec<Step>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Added {
        employee_id: String,
        faces: Vec<String>,
        /// Some of their learned faces went: the gallery rebuilds them.
        retired: bool,
    },
    Removed {
        employee_id: String,
    },
}

impl Store {
    /// Applies a page and moves the revision to its end, all in one transaction: a crash
    /// leaves the roster before or after the page, never between (files written for an
    /// uncommitted page are orphans, swept at start-up). Entries at or below the applied
    /// revision are skipped, so a page delivered twice changes nothing.
    pub(crate) fn apply_roster(&self, page: &ReadyPage) -> Result<Applied, StoreError> {
        let (applied, removed) = {
            let mut c = self.conn();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current: i64 =
                tx.query_row("SELECT revision FROM roster_state WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
            let current = current as u64;
            tx.execute(
                "UPDATE roster_state SET head = MAX(head, ?1) WHERE id = 1",
                [page.head as i64],
            )?;
            if page.since > current {
                tx.commit()?;
                return Ok(Applied::Gap { revision: current });
            }
            if page.up_to <= current {
                tx.commit()?;
                return Ok(Applied::Stale);
            }
            let now = ts(Utc::now());
            let mut steps = Vec::new();
            let mut removed = Removed::default();
            for e in page.entries.iter().filter(|e| e.revision > current) {
                match &e.op {
                    ReadyOp::Refused(why) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO roster_refused (revision, employee_id, why, at)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![e.revision as i64, e.employee_id, why, now],
                        )?;
                    }
                    ReadyOp::Delete => {
                        let r = self.remove_where(&tx, Some(&e.employee_id))?;
                        if r.users > 0 {
                            removed.absorb(r);
                            steps.push(Step::Removed {
                                employee_id: e.employee_id.clone(),
                            });
                        }
                    }
                    ReadyOp::Enrol(enrol) => {
                        let faces = self.apply_enrol(&tx, &e.employee_id, enrol, &now)?;
                        let gone = self.retire(&tx, &e.employee_id, &enrol.retire)?;
                        steps.push(Step::Added {
                            employee_id: e.employee_id.clone(),
                            faces,
                            retired: gone.templates > 0,
                        });
                        removed.absorb(gone);
                    }
                }
            }
            tx.execute(
                "UPDATE roster_state SET revision = ?1 WHERE id = 1",
                [page.up_to as i64],
            )?;
            tx.commit()?;
            (
                Applied::Done {
                    revision: page.up_to,
                    steps,
                },
                removed,
            )
        };
        self.unlink(&removed)?;
        Ok(applied)
    }

    /// Creates or renames the person and adds the faces not held yet; their ids.
    fn apply_enrol(
        &self,
        tx: &Transaction<'_>,
        employee_id: &str,
        enrol: &ReadyEnrol,
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let updated = tx.execute(
            "UPDATE users SET name = ?2 WHERE employee_id = ?1",
            params![employee_id, enrol.name],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO users (employee_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![employee_id, enrol.name, now],
            )?;
        }
        let mut added = Vec::new();
        for f in &enrol.faces {
            let held: bool = tx
                .prepare_cached("SELECT 1 FROM templates WHERE face_id = ?1 LIMIT 1")?
                .exists([&f.face_id])?;
            if held {
                continue;
            }
            let face = NewFace {
                template: &f.npy,
                crop_png: f.crop_png.as_deref(),
                quality: f.quality,
                face_id: Some(&f.face_id),
                learned: f.learned,
            };
            self.insert_face(
                tx,
                employee_id,
                &f.embedder,
                f.device_id.as_deref(),
                &face,
                now,
            )?;
            added.push(f.face_id.clone());
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::files;
    use crate::store::roster::RosterState;
    use crate::store::testing::temp_store;

    fn face(id: &str) -> ReadyFace {
        ReadyFace {
            face_id: id.into(),
            embedder: "hog-v1".into(),
            npy: b"npy".to_vec(),
            crop_png: Some(b"png".to_vec()),
            quality: 0.9,
            device_id: Some("K2".into()),
            learned: false,
        }
    }

    fn enrol(revision: u64, id: &str, faces: &[&str]) -> ReadyEntry {
        ReadyEntry {
            revision,
            employee_id: id.into(),
            op: ReadyOp::Enrol(ReadyEnrol {
                name: format!("name of {id}"),
                faces: faces.iter().map(|f| face(f)).collect(),
                retire: Vec::new(),
            }),
        }
    }

    fn page(since: u64, up_to: u64, entries: Vec<ReadyEntry>) -> ReadyPage {
        ReadyPage {
            since,
            up_to,
            head: up_to,
            entries,
        }
    }

    fn files_of(s: &Store) -> usize {
        files::list(s.encoding_dir()).unwrap().len() + files::list(s.image_dir()).unwrap().len()
    }

    #[test]
    fn a_page_applies_once_in_order_and_moves_the_revision() {
        let t = temp_store();
        let s = &t.store;
        let p = page(
            0,
            3,
            vec![enrol(1, "E1", &["f1", "f2"]), enrol(3, "E2", &["f3"])],
        );
        let Applied::Done { revision, steps } = s.apply_roster(&p).unwrap() else {
            panic!("not applied");
        };
        assert_eq!(revision, 3);
        assert_eq!(
            steps[0],
            Step::Added {
                employee_id: "E1".into(),
                faces: vec!["f1".into(), "f2".into()],
                retired: false,
            }
        );
        assert_eq!(
            s.roster_state().unwrap(),
            RosterState {
                revision: 3,
                head: 3,
                ..RosterState::default()
            }
        );
        assert_eq!(s.users().unwrap().len(), 2);
        assert_eq!(files_of(s), 6);
        // Delivered again: nothing changes.
        assert_eq!(s.apply_roster(&p).unwrap(), Applied::Stale);
        assert_eq!(files_of(s), 6);
        // A page that starts after what is applied leaves a gap: refused.
        let later = page(5, 6, vec![enrol(6, "E3", &["f4"])]);
        assert_eq!(
            s.apply_roster(&later).unwrap(),
            Applied::Gap { revision: 3 }
        );
        assert!(s.user("E3").unwrap().is_none());
        // Overlapping: only the entries after the applied revision.
        let overlap = page(
            2,
            4,
            vec![enrol(3, "E2", &["f3"]), enrol(4, "E1", &["f1", "f5"])],
        );
        let Applied::Done { steps, .. } = s.apply_roster(&overlap).unwrap() else {
            panic!("not applied");
        };
        assert_eq!(
            steps,
            vec![Step::Added {
                employee_id: "E1".into(),
                faces: vec!["f5".into()],
                retired: false,
            }],
            "f1 is held already"
        );
        assert_eq!(s.known_faces(&["f1", "f5", "nope"]).unwrap(), ["f1", "f5"]);
    }

    #[test]
    fn a_deletion_in_a_page_erases_the_files_and_renames_follow_the_centre() {
        let t = temp_store();
        let s = &t.store;
        s.apply_roster(&page(0, 1, vec![enrol(1, "E1", &["f1"])]))
            .unwrap();
        let rename = ReadyEntry {
            revision: 2,
            employee_id: "E1".into(),
            op: ReadyOp::Enrol(ReadyEnrol {
                name: "새 이름".into(),
                faces: vec![],
                retire: Vec::new(),
            }),
        };
        let delete_unknown = ReadyEntry {
            revision: 3,
            employee_id: "NOBODY".into(),
            op: ReadyOp::Delete,
        };
        s.apply_roster(&page(1, 3, vec![rename, delete_unknown]))
            .unwrap();
        assert_eq!(s.user("E1").unwrap().unwrap().name, "새 이름");
        let delete = ReadyEntry {
            revision: 4,
            employee_id: "E1".into(),
            op: ReadyOp::Delete,
        };
        let Applied::Done { steps, .. } = s.apply_roster(&page(3, 4, vec![delete])).unwrap() else {
            panic!("not applied");
        };
        assert_eq!(
            steps,
            vec![Step::Removed {
                employee_id: "E1".into()
            }]
        );
        assert_eq!(files_of(s), 0);
        assert!(s.users().unwrap().is_empty());
    }

    #[test]
    fn learned_faces_arrive_marked_and_only_they_are_retired() {
        let t = temp_store();
        let s = &t.store;
        let mut learned = enrol(2, "E1", &["l1"]);
        if let ReadyOp::Enrol(e) = &mut learned.op {
            e.faces[0].learned = true;
        }
        s.apply_roster(&page(0, 2, vec![enrol(1, "E1", &["f1"]), learned]))
            .unwrap();
        let marks = |s: &Store| {
            s.templates("hog-v1", Some("E1"))
                .unwrap()
                .into_iter()
                .map(|r| (r.face_id.unwrap(), r.learned))
                .collect::<Vec<_>>()
        };
        assert_eq!(marks(s), [("f1".into(), false), ("l1".into(), true)]);
        // A later lesson retires l1; naming the enrolment photo f1 retires nothing.
        let mut next = enrol(3, "E1", &["l2"]);
        if let ReadyOp::Enrol(e) = &mut next.op {
            e.faces[0].learned = true;
            e.retire = vec!["l1".into(), "f1".into()];
        }
        let Applied::Done { steps, .. } = s.apply_roster(&page(2, 3, vec![next])).unwrap() else {
            panic!("not applied");
        };
        assert!(
            matches!(&steps[0], Step::Added { retired: true, .. }),
            "{steps:?}"
        );
        assert_eq!(marks(s), [("f1".into(), false), ("l2".into(), true)]);
        assert_eq!(files_of(s), 2 * 2, "l1's files are gone");
    }

    #[test]
    fn a_refused_entry_is_recorded_once_and_the_revision_moves_past_it() {
        let t = temp_store();
        let s = &t.store;
        let refused = |revision| ReadyEntry {
            revision,
            employee_id: "E9".into(),
            op: ReadyOp::Refused("template: 2^36 floats".into()),
        };
        let p = page(
            0,
            3,
            vec![enrol(1, "E1", &["f1"]), refused(2), enrol(3, "E2", &["f2"])],
        );
        let Applied::Done { revision, steps } = s.apply_roster(&p).unwrap() else {
            panic!("not applied");
        };
        assert_eq!((revision, steps.len()), (3, 2));
        assert!(s.user("E9").unwrap().is_none());
        let st = s.roster_state().unwrap();
        assert_eq!((st.revision, st.refused), (3, 1));
        assert_eq!(st.last_refused, Some((2, "template: 2^36 floats".into())));
        // The same page again changes nothing, and counts nothing twice.
        assert_eq!(s.apply_roster(&p).unwrap(), Applied::Stale);
        assert_eq!(s.roster_state().unwrap().refused, 1);
    }
}
