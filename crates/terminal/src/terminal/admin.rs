//! Administering people and records: list, look up, delete (templates and face images
//! erased, attendance kept), and query the attendance history.

use std::sync::Arc;

use tracing::info;

use super::{Deadline, Terminal, TerminalError, blocking};
use crate::store::{AttendanceQuery, AttendanceRow, UserRow};

impl Terminal {
    pub(crate) async fn attendance(
        self: &Arc<Self>,
        q: AttendanceQuery,
    ) -> Result<Vec<AttendanceRow>, TerminalError> {
        let me = self.clone();
        blocking(move || Ok(me.store.attendance(&q)?)).await?
    }

    pub(crate) async fn users(self: &Arc<Self>) -> Result<Vec<UserRow>, TerminalError> {
        let me = self.clone();
        blocking(move || Ok(me.store.users()?)).await?
    }

    pub(crate) async fn user(
        self: &Arc<Self>,
        employee_id: String,
    ) -> Result<UserRow, TerminalError> {
        let me = self.clone();
        blocking(move || {
            me.store
                .user(&employee_id)?
                .ok_or(TerminalError::UserNotFound(employee_id))
        })
        .await?
    }

    /// Runs a change of people as their one writer (enrolments, deletions, roster pages
    /// and lessons queue behind each other), within the request's deadline.
    async fn write_people<T: Send + 'static>(
        self: &Arc<Self>,
        deadline: &Deadline,
        f: impl FnOnce(&Terminal) -> Result<T, TerminalError> + Send + 'static,
    ) -> Result<T, TerminalError> {
        let writer = self.people_writer().await;
        let (me, deadline) = (self.clone(), deadline.clone());
        blocking(move || {
            let _writer = writer;
            deadline.begin_write()?;
            f(&me)
        })
        .await?
    }

    /// Deletes a user, their templates and face images; attendance history stays.
    /// Returns the number of templates removed.
    pub(crate) async fn delete_user(
        self: &Arc<Self>,
        employee_id: String,
        deadline: &Deadline,
    ) -> Result<usize, TerminalError> {
        self.write_people(deadline, move |me| {
            let removed = me.store.delete_user(&employee_id, true)?;
            me.recorder.wake_outbox();
            me.recognizer.remove(&employee_id);
            info!(employee_id = %employee_id, templates = removed.templates, "user deleted");
            Ok(removed.templates)
        })
        .await
    }

    /// Erases the templates a person's walk-ups taught (learning at the door); their
    /// enrolment stays. Returns the number of templates removed.
    pub(crate) async fn forget_learned(
        self: &Arc<Self>,
        employee_id: String,
        deadline: &Deadline,
    ) -> Result<usize, TerminalError> {
        self.write_people(deadline, move |me| {
            let removed = me.store.forget_learned(&employee_id)?;
            me.recorder.wake_outbox();
            me.recognizer.reload_person(&me.store, &employee_id)?;
            info!(employee_id = %employee_id, templates = removed, "learned templates erased");
            Ok(removed)
        })
        .await
    }

    /// Deletes every user (attendance stays). Returns the number of users removed.
    pub(crate) async fn reset_users(
        self: &Arc<Self>,
        deadline: &Deadline,
    ) -> Result<usize, TerminalError> {
        self.write_people(deadline, move |me| {
            let removed = me.store.reset_users()?;
            me.recognizer.clear();
            info!(users = removed.users, "all users deleted");
            Ok(removed.users)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drop_once_held, enrol, photo, terminal};
    use super::*;
    use crate::answer::{IdentifyAnswer, MatchMode, PunchInput};
    use attendance_core::punch::PunchRequest;

    #[tokio::test]
    async fn deleting_erases_the_face_keeps_the_record_and_stops_recognition() {
        let t = terminal();
        let tm = &t.terminal;
        let none = Deadline::none();
        let id = enrol(tm, "caltech_p02/2.jpg", "홍길동").await;
        let punch = PunchInput {
            request: PunchRequest::Auto,
            device_id: None,
            ts_client: None,
        };
        let a = tm
            .identify_photo(
                photo("caltech_p02/2.jpg"),
                punch.clone(),
                MatchMode::Identify,
                &none,
            )
            .await
            .unwrap();
        assert!(matches!(a, IdentifyAnswer::Recognised { .. }), "{a:?}");
        assert_eq!(tm.user(id.clone()).await.unwrap().templates, 1);

        assert_eq!(tm.delete_user(id.clone(), &none).await.unwrap(), 1);
        let e = tm.user(id.clone()).await.unwrap_err();
        assert!(matches!(e, TerminalError::UserNotFound(_)), "{e}");
        assert_eq!(
            std::fs::read_dir(t.dir.join("encodings")).unwrap().count(),
            0
        );
        assert_eq!(std::fs::read_dir(t.dir.join("images")).unwrap().count(), 0);
        let history = tm
            .attendance(AttendanceQuery {
                employee_id: Some(id.clone()),
                limit: 10,
                ..AttendanceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(history.len(), 1, "attendance stays");
        let a = tm
            .identify_photo(
                photo("caltech_p02/2.jpg"),
                punch,
                MatchMode::Identify,
                &none,
            )
            .await
            .unwrap();
        assert!(
            matches!(a, IdentifyAnswer::Failed { .. }),
            "not recognised any more: {a:?}"
        );
        let e = tm.delete_user(id, &none).await.unwrap_err();
        assert!(matches!(e, TerminalError::UserNotFound(_)), "{e}");
    }

    #[tokio::test]
    async fn reset_removes_everyone_unless_the_request_timed_out() {
        let t = terminal();
        let tm = &t.terminal;
        enrol(tm, "caltech_p02/2.jpg", "A").await;
        enrol(tm, "caltech_p03/2.jpg", "B").await;
        let expired = Deadline::new();
        assert!(expired.expire());
        let e = tm.reset_users(&expired).await.unwrap_err();
        assert!(matches!(e, TerminalError::TimedOut), "{e}");
        assert_eq!(tm.users().await.unwrap().len(), 2);
        assert_eq!(tm.reset_users(&Deadline::none()).await.unwrap(), 2);
        assert!(tm.users().await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_enrolment_dropped_mid_write_keeps_the_people_writer_until_it_ends() {
        let t = terminal();
        let tm = t.terminal.clone();
        // The request gives up (a timeout drops it) while its person is written.
        let request = {
            let tm = tm.clone();
            async move { enrol(&tm, "caltech_p02/2.jpg", "홍길동").await }
        };
        drop_once_held(request, || tm.enrol_lock.try_lock().is_err()).await;
        assert!(
            tm.enrol_lock.try_lock().is_err(),
            "the dropped request's write runs on: no other writer may start"
        );
        let _next = tokio::time::timeout(std::time::Duration::from_secs(30), tm.people_writer())
            .await
            .expect("the writer comes back once the write ends");
        assert_eq!(
            tm.store.users().unwrap().len(),
            1,
            "the write that began ended"
        );
    }
}
