//! The terminal's side of the fleet roster: changes made here queued in the outbox, the
//! site's pages applied in one transaction with the revision they bring the terminal to.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use attendance_wire::roster::wire;

/// This terminal's place in a fleet: changes made here are published, generated ids
/// carry site and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fleet {
    pub(crate) site: String,
    pub(crate) device_id: String,
}

/// A face's template (`.npy`) and kept crop (PNG), unsealed.
pub(crate) type FaceData = (Vec<u8>, Option<Vec<u8>>);

/// How far this terminal's copy of the roster is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RosterState {
    /// Last revision applied.
    pub(crate) revision: u64,
    /// Latest revision the centre announced.
    pub(crate) head: u64,
    /// Entries refused (skipped), and the last one's revision and why.
    pub(crate) refused: u64,
    pub(crate) last_refused: Option<(u64, String)>,
}

impl Store {
    /// Makes this terminal part of a fleet.
    pub(crate) fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Queues a change made here for the centre, in the caller's transaction.
    pub(super) fn queue_change(
        &self,
        tx: &Transaction<'_>,
        fleet: &Fleet,
        employee_id: &str,
        op: wire::Op,
        now: &str,
    ) -> Result<(), StoreError> {
        let change = wire::Change {
            change_id: uuid::Uuid::now_v7().to_string(),
            employee_id: employee_id.to_owned(),
            site: fleet.site.clone(),
            device_id: Some(fleet.device_id.clone()),
            ts: now.to_owned(),
            op,
        };
        tx.execute(
            "INSERT INTO outbox (event_id, payload, created_at, kind) VALUES (?1, ?2, ?3, 'roster')",
            params![change.change_id, wire::encode(&change), now],
        )?;
        Ok(())
    }

    /// The template and kept crop of a face, unsealed, to send with its change; `None`
    /// when the face is gone (deleted before it was sent).
    pub(crate) fn face_data(&self, face_id: &str) -> Result<Option<FaceData>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT vector_path, crop_path FROM templates WHERE face_id = ?1 ORDER BY id LIMIT 1",
                [face_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((vector, crop)) = row else {
            return Ok(None);
        };
        let template = self.read_file(&self.encoding_dir.join(vector))?;
        let crop = crop
            .map(|c| self.read_file(&self.image_dir.join(c)))
            .transpose()?;
        Ok(Some((template, crop)))
    }

    pub(crate) fn roster_state(&self) -> Result<RosterState, StoreError> {
        let c = self.conn();
        let (revision, head, refused) = c.query_row(
            "SELECT revision, head, (SELECT COUNT(*) FROM roster_refused) FROM roster_state WHERE id = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
        )?;
        let last_refused = c
            .query_row(
                "SELECT revision, why FROM roster_refused ORDER BY revision DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(RosterState {
            revision: revision as u64,
            head: head as u64,
            refused: refused as u64,
            last_refused,
        })
    }

    /// Which of these faces the terminal already holds (its own enrolments coming back,
    /// or a page applied before).
    pub(crate) fn known_faces(&self, face_ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached("SELECT 1 FROM templates WHERE face_id = ?1 LIMIT 1")?;
        let mut known = Vec::new();
        for id in face_ids {
            if stmt.exists([id])? {
                known.push((*id).to_owned());
            }
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_fleet_store;
    use crate::store::{NewFace, NewTemplate};

    #[test]
    fn in_a_fleet_ids_carry_site_and_device_and_changes_queue_without_face_data() {
        let t = temp_fleet_store();
        let s = &t.store;
        let f = NewFace {
            template: b"the template",
            crop_png: Some(b"the crop"),
            quality: 0.8,
            face_id: None,
            learned: false,
        };
        let new = |publish| NewTemplate {
            employee_id: None,
            name: Some("홍길동"),
            embedder: "hog-v1",
            device_id: Some("K1"),
            faces: std::slice::from_ref(&f),
            publish,
        };
        let e = s.enrol(&new(true)).unwrap();
        assert_eq!(e.employee_id, "hq-K1-001");
        // Not made by a person here (a re-embedding): a local id, nothing sent.
        assert_eq!(s.enrol(&new(false)).unwrap().employee_id, "EMP002");
        let queued = s.outbox_next(10).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].kind, crate::store::outbox::OutboxKind::Roster);
        let change: wire::Change = ciborium::from_reader(&queued[0].payload[..]).unwrap();
        assert_eq!(change.change_id, queued[0].event_id);
        let face = &change.faces()[0];
        assert_eq!((face.template.as_ref(), face.crop.as_ref()), (None, None));
        assert_eq!(
            s.face_data(&face.face_id).unwrap(),
            Some((b"the template".to_vec(), Some(b"the crop".to_vec())))
        );
        s.delete_user("hq-K1-001", true).unwrap();
        assert_eq!(s.face_data(&face.face_id).unwrap(), None, "erased");
        let queued = s.outbox_next(10).unwrap();
        let delete: wire::Change = ciborium::from_reader(&queued[1].payload[..]).unwrap();
        assert_eq!(
            (delete.employee_id.as_str(), delete.op),
            ("hq-K1-001", wire::Op::Delete)
        );
    }
}
