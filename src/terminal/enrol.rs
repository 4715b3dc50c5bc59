//! Enrolment: a photo becomes a new person, or another template of an existing one.

use std::sync::Arc;

use tracing::info;

use super::{Deadline, Terminal, TerminalError, blocking};
use crate::face::{Accepted, Rejection, encode, template};
use crate::store::NewTemplate;

/// Enrolment request.
#[derive(Debug, Clone)]
pub(crate) struct EnrolInput {
    pub(crate) employee_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) device_id: Option<String>,
}

/// The answer to an enrolment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EnrolAnswer {
    Enrolled {
        employee_id: String,
        name: String,
        new_user: bool,
        template_id: i64,
    },
    /// The photo has no usable face.
    Rejected(Rejection),
}

impl Terminal {
    /// Enrols the face in a photo as a new user or a new template of an existing one.
    pub(crate) async fn enrol_photo(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        input: EnrolInput,
        deadline: &Deadline,
    ) -> Result<EnrolAnswer, TerminalError> {
        if input.employee_id.is_none() && input.name.is_none() {
            return Err(TerminalError::InvalidField {
                field: "name",
                why: "required for a new user".into(),
            });
        }
        // The analysis slot covers detection only: the embedding below runs under the
        // enrolment lock, one at a time anyway, and a slot must not wait for that lock.
        let verdict = {
            let _slot = self.admission.slot().await?;
            self.accept_photo(bytes).await?
        };
        let accepted = match verdict {
            Ok(a) => a,
            Err(r) => return Ok(EnrolAnswer::Rejected(r)),
        };
        self.check_disk()?;
        let _one_at_a_time = self.enrol_lock.lock().await;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || me.enrol(accepted, input, &deadline)).await?
    }

    fn enrol(
        &self,
        accepted: Accepted,
        input: EnrolInput,
        deadline: &Deadline,
    ) -> Result<EnrolAnswer, TerminalError> {
        self.refresh_gallery()?;
        let embedder = self.pipeline.embedder();
        let rows = embedder.enrol(&accepted.crop);
        // The spec's rule: one registration per person. A face that matches someone
        // else is refused; adding a template to the same employee is fine.
        if let Some(n) = self.recognizer.nearest(&embedder.embed(&accepted.crop))
            && n.distance <= self.recognizer.rule().threshold
            && input.employee_id.as_deref() != Some(n.employee_id.as_str())
        {
            let name = self.name_of(&n.employee_id)?;
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
        let png = if self.settings.storage.keep_enrolment_crops {
            Some(encode::png(&accepted.crop.rgb)?)
        } else {
            None
        };
        deadline.begin_write()?;
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{new_person, photo, terminal};
    use super::*;

    #[tokio::test]
    async fn a_new_person_then_another_photo_of_them_and_not_twice_as_someone_else() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        let first = tm
            .enrol_photo(photo("caltech_p02/2.jpg"), new_person("홍길동"), &none)
            .await
            .unwrap();
        assert_eq!(
            first,
            EnrolAnswer::Enrolled {
                employee_id: "EMP001".into(),
                name: "홍길동".into(),
                new_user: true,
                template_id: 1
            }
        );
        let more = tm
            .enrol_photo(
                photo("caltech_p02/2.jpg"),
                EnrolInput {
                    employee_id: Some("EMP001".into()),
                    name: None,
                    device_id: None,
                },
                &none,
            )
            .await
            .unwrap();
        assert!(
            matches!(
                more,
                EnrolAnswer::Enrolled {
                    new_user: false,
                    ..
                }
            ),
            "{more:?}"
        );
        let twice = tm
            .enrol_photo(photo("caltech_p02/2.jpg"), new_person("Impostor"), &none)
            .await
            .unwrap_err();
        assert!(
            matches!(twice, TerminalError::AlreadyEnrolled { ref employee_id, ref name, .. } if employee_id == "EMP001" && name == "홍길동"),
            "{twice}"
        );
        let users = tm.users().await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].templates, 2);
        // The crop is kept (for re-embedding), sealed or not, beside the template.
        let files = std::fs::read_dir(t.dir.join("images")).unwrap().count();
        assert_eq!(files, 2);
    }

    #[tokio::test]
    async fn refusals_leave_nothing_behind() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        let e = tm
            .enrol_photo(
                photo("caltech_p02/2.jpg"),
                EnrolInput {
                    employee_id: None,
                    name: None,
                    device_id: None,
                },
                &none,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, TerminalError::InvalidField { field: "name", .. }),
            "{e}"
        );
        let e = tm
            .enrol_photo(
                photo("caltech_p02/2.jpg"),
                EnrolInput {
                    employee_id: Some("EMP042".into()),
                    name: None,
                    device_id: None,
                },
                &none,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, TerminalError::InvalidField { field: "name", .. }),
            "{e}"
        );
        let chart = photo("_negatives/no_face_chart.jpg");
        let a = tm
            .enrol_photo(chart, new_person("Chart"), &none)
            .await
            .unwrap();
        assert_eq!(a, EnrolAnswer::Rejected(Rejection::NoFace));
        let expired = Deadline::new();
        assert!(expired.expire());
        let e = tm
            .enrol_photo(photo("caltech_p02/2.jpg"), new_person("Late"), &expired)
            .await
            .unwrap_err();
        assert!(matches!(e, TerminalError::TimedOut), "{e}");
        assert!(tm.users().await.unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(t.dir.join("encodings")).unwrap().count(),
            0
        );
    }
}
