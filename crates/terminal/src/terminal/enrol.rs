//! Enrolment: a photo, or several frames of the camera, become a new person or more
//! templates of an existing one.

use std::sync::Arc;

use tracing::info;

use super::gather::Gather;
use super::recognizer::GalleryOp;
use super::{Deadline, Terminal, TerminalError, blocking};
use crate::camera::Camera;
use crate::store::{NewFace, NewTemplate};
use attendance_face::{Accepted, Embedding, Rejection, encode, template};

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
        /// The first new template.
        template_id: i64,
        /// Templates added: 1 for a photo, the frames kept for the camera.
        templates: usize,
        /// Camera only: frames whose face passed the gates in the window.
        frames: Option<usize>,
    },
    /// The photo (every frame, for the camera) has no usable face.
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
        check_names(&input)?;
        // The analysis slot covers detection only: the embedding below runs under the
        // enrolment lock, one at a time anyway, and a slot must not wait for that lock.
        let slot = Arc::new(self.admission.slot().await?);
        let verdict = self.accept_photo(bytes, slot).await?;
        let accepted = match verdict {
            Ok(a) => a,
            Err(r) => return Ok(EnrolAnswer::Rejected(r)),
        };
        self.recorder.check_disk()?;
        let writer = self.people_writer().await;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || {
            let _writer = writer;
            let probe = me.pipeline.embedder().embed(&accepted.crop);
            me.enrol(vec![(accepted, probe)], None, input, &deadline)
        })
        .await?
    }

    /// Enrols from the camera: gathers, for `enrol_window`, the frames whose face passed
    /// the gates, keeps up to `enrol_frames` of the person in front that differ from
    /// each other, and stores them as that person's templates in one transaction.
    pub(crate) async fn enrol_live(
        self: &Arc<Self>,
        camera: &Camera,
        input: EnrolInput,
        deadline: &Deadline,
    ) -> Result<EnrolAnswer, TerminalError> {
        check_names(&input)?;
        let mut window = camera
            .analyses_for(self.settings.enrol_window)
            .ok_or(TerminalError::CameraUnavailable)?;
        let rule = self.recognizer.rule();
        // Frames a tenth of the accept distance apart add something; a face further from
        // the first than the 1:1 threshold is somebody else.
        let mut gather = Gather::new(
            self.settings.enrol_frames,
            rule.threshold * 0.1,
            rule.verify_threshold,
        );
        let (mut analysed, mut last_rejection) = (0, None);
        while let Some(a) = window.next().await {
            match &a.verdict {
                Err(r) => last_rejection = Some(*r),
                Ok(f) => {
                    // Analysed before this request waited: not counted.
                    let Some(e) = &f.embedding else {
                        continue;
                    };
                    let accepted = Accepted {
                        face: f.face,
                        quality: f.quality,
                        crop: f.crop.clone(),
                    };
                    gather.offer(e.clone(), (accepted, e.clone()));
                }
            }
            analysed += 1;
        }
        if analysed == 0 {
            return Err(TerminalError::CameraUnavailable);
        }
        let frames = gather.offered;
        let picked = gather.pick();
        if picked.others > 0 {
            info!(
                faces = picked.others,
                "camera enrolment: left out faces of somebody else"
            );
        }
        let kept = picked.kept;
        if kept.is_empty() {
            return Ok(EnrolAnswer::Rejected(
                last_rejection.unwrap_or(Rejection::NoFace),
            ));
        }
        self.recorder.check_disk()?;
        let writer = self.people_writer().await;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || {
            let _writer = writer;
            me.enrol(kept, Some(frames), input, &deadline)
        })
        .await?
    }

    /// Stores `faces` (at least one, each with its probe embedding) as one person's new
    /// templates.
    fn enrol(
        &self,
        faces: Vec<(Accepted, Embedding)>,
        frames: Option<usize>,
        input: EnrolInput,
        deadline: &Deadline,
    ) -> Result<EnrolAnswer, TerminalError> {
        self.refresh_gallery()?;
        let embedder = self.pipeline.embedder();
        // The spec's rule: one registration per person. A face that matches someone
        // else is refused; adding templates to the same employee is fine.
        for (_, probe) in &faces {
            if let Some(n) = self.recognizer.nearest(probe)
                && n.distance <= self.recognizer.rule().threshold
                && input.employee_id.as_deref() != Some(n.employee_id.as_str())
            {
                let name = self.recorder.name_of(&n.employee_id)?;
                return Err(TerminalError::AlreadyEnrolled {
                    employee_id: n.employee_id,
                    name,
                    distance: n.distance,
                });
            }
        }
        if let Some(id) = &input.employee_id
            && input.name.is_none()
            && self.store.user(id)?.is_none()
        {
            // Faces for a person nobody has: 404, as documented (a new person comes
            // with a name).
            return Err(TerminalError::UserNotFound(id.clone()));
        }
        // (rows, .npy, crop PNG) of each face.
        let mut made = Vec::with_capacity(faces.len());
        for (f, _) in &faces {
            let rows = embedder.enrol(&f.crop);
            let npy =
                template::encode(&rows).map_err(|e| TerminalError::Internal(e.to_string()))?;
            let png = if self.settings.storage.keep_enrolment_crops {
                Some(encode::png(&f.crop.rgb)?)
            } else {
                None
            };
            made.push((rows, npy, png));
        }
        let new_faces: Vec<NewFace<'_>> = made
            .iter()
            .zip(&faces)
            .map(|((_, npy, png), (f, _))| NewFace {
                template: npy,
                crop_png: png.as_deref(),
                quality: f.quality.score(),
                face_id: None,
                learned: false,
            })
            .collect();
        deadline.begin_write()?;
        let enrolled = self.store.enrol(&NewTemplate {
            employee_id: input.employee_id.as_deref(),
            name: input.name.as_deref(),
            embedder: embedder.name(),
            device_id: input.device_id.as_deref(),
            faces: &new_faces,
            publish: true,
        })?;
        // Its roster change is in the outbox: send it now, like a punch.
        self.recorder.wake_outbox();
        // All the new templates at once: a match sees the enrolment whole or not at all.
        let rows = made.iter().flat_map(|(rows, _, _)| rows.iter().cloned());
        self.recognizer
            .apply(&[GalleryOp::Add(enrolled.employee_id.clone(), rows.collect())]);
        info!(
            employee_id = %enrolled.employee_id,
            new_user = enrolled.new_user,
            templates = enrolled.templates,
            "enrolled"
        );
        Ok(EnrolAnswer::Enrolled {
            employee_id: enrolled.employee_id,
            name: enrolled.name,
            new_user: enrolled.new_user,
            template_id: enrolled.template_id,
            templates: enrolled.templates,
            frames,
        })
    }
}

/// A new person needs a name (an existing one is named by `employee_id`).
fn check_names(input: &EnrolInput) -> Result<(), TerminalError> {
    if input.employee_id.is_none() && input.name.is_none() {
        return Err(TerminalError::InvalidField {
            field: "name",
            why: "required for a new user".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{camera, new_person, photo, terminal};
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
                template_id: 1,
                templates: 1,
                frames: None,
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
            matches!(&e, TerminalError::UserNotFound(id) if id == "EMP042"),
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_camera_enrols_several_differing_frames_of_one_person() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        // Three photos of one person, then a stranger, each held 300 ms (looping), as
        // someone turning a little in front of the camera while a colleague passes.
        let reel = [
            "caltech_p02/2.jpg",
            "caltech_p02/3.jpg",
            "caltech_p02/4.jpg",
            "_unenrolled/caltech_u01/1.jpg",
        ];
        let cam = camera(tm, &reel, 300).await;
        let a = tm
            .enrol_live(&cam, new_person("홍길동"), &none)
            .await
            .unwrap();
        let EnrolAnswer::Enrolled {
            employee_id,
            templates,
            frames: Some(frames),
            ..
        } = a
        else {
            panic!("not enrolled: {a:?}");
        };
        assert_eq!(templates, 3, "{frames} frames seen");
        assert!(frames >= 3);
        let users = tm.users().await.unwrap();
        assert_eq!((users.len(), users[0].templates), (1, 3));
        // Recognised from a photo the camera never showed; the stranger was not kept.
        let probe = photo("caltech_p02/5.jpg");
        let accepted = tm.pipeline().accept(&probe).unwrap();
        let (_, d) = tm.match_probe(
            &tm.pipeline().embedder().embed(&accepted.crop),
            &crate::answer::MatchMode::Identify,
        );
        assert!(
            matches!(&d, attendance_face::Decision::Match { employee_id: e, .. } if *e == employee_id),
            "{d:?}"
        );
        let stranger = tm
            .pipeline()
            .accept(&photo("_unenrolled/caltech_u01/1.jpg"))
            .unwrap();
        let (_, d) = tm.match_probe(
            &tm.pipeline().embedder().embed(&stranger.crop),
            &crate::answer::MatchMode::Identify,
        );
        assert!(
            matches!(d, attendance_face::Decision::Unknown { .. }),
            "{d:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_still_face_is_one_template_and_no_face_is_refused() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        let cam = camera(tm, &["caltech_p02/2.jpg"], 60_000).await;
        let a = tm
            .enrol_live(&cam, new_person("홍길동"), &none)
            .await
            .unwrap();
        assert!(
            matches!(a, EnrolAnswer::Enrolled { templates: 1, frames: Some(f), .. } if f >= 2),
            "{a:?}"
        );
        drop(cam);
        let cam = camera(tm, &["_negatives/no_face_chart.jpg"], 60_000).await;
        let a = tm
            .enrol_live(&cam, new_person("Chart"), &none)
            .await
            .unwrap();
        assert_eq!(a, EnrolAnswer::Rejected(Rejection::NoFace));
        assert_eq!(tm.users().await.unwrap().len(), 1);
    }
}
