//! What `/health` and the systemd status line report about the terminal's own parts.

use std::sync::Arc;

use super::{Terminal, blocking};
use crate::store::roster::RosterState;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Health {
    pub(crate) database_ok: bool,
    pub(crate) outbox_pending: Option<u64>,
    /// Published, but MySQL's receipt not yet seen.
    pub(crate) outbox_unconfirmed: Option<u64>,
    /// When the oldest unpublished entry was made (`Some(None)`: none waits; `None`:
    /// not readable).
    pub(crate) outbox_oldest: Option<Option<chrono::DateTime<chrono::Utc>>>,
    pub(crate) free_mb: Option<u64>,
    pub(crate) storage_ok: bool,
    pub(crate) embedder: &'static str,
    pub(crate) templates: usize,
    pub(crate) people: usize,
    /// The gallery size the embedder's figures were measured at.
    pub(crate) measured_people: usize,
    /// Above this many people 1:N is refused (None: it is not).
    pub(crate) identify_limit: Option<usize>,
    /// The site roster's revision applied here and the centre's latest (in a fleet).
    pub(crate) roster: Option<RosterState>,
    /// People with no template of this terminal's embedder (made by another and no crop
    /// kept to re-embed): they cannot be recognised here.
    pub(crate) cannot_recognise: Option<Vec<String>>,
}

impl Health {
    /// Whether a face alone (1:N) is answered now, or an employee id must come with it.
    pub(crate) fn identifies(&self) -> bool {
        self.identify_limit.is_none_or(|l| self.people <= l)
    }
}

impl Terminal {
    /// Never fails: what cannot be read is reported as unknown or unhealthy.
    pub(crate) async fn health(self: &Arc<Self>) -> Health {
        let me = self.clone();
        let checked = blocking(move || {
            let database_ok = me.store.ping().is_ok();
            let free_mb = me.store.free_bytes().ok().map(|b| b / (1024 * 1024));
            let (templates, people) = me.recognizer.size();
            Health {
                database_ok,
                outbox_pending: database_ok
                    .then(|| me.store.outbox_pending().ok())
                    .flatten(),
                outbox_unconfirmed: database_ok
                    .then(|| me.store.outbox_unconfirmed().ok())
                    .flatten(),
                outbox_oldest: database_ok
                    .then(|| me.store.outbox_oldest_pending().ok())
                    .flatten(),
                storage_ok: free_mb.is_some_and(|f| f >= me.settings.storage.min_free_mb),
                free_mb,
                embedder: me.embedder_name(),
                templates,
                people,
                measured_people: me.recognizer.embedder().calibration().measured_people,
                identify_limit: me.identify_limit(),
                roster: me
                    .settings
                    .fleet
                    .as_ref()
                    .and_then(|_| me.store.roster_state().ok()),
                cannot_recognise: database_ok
                    .then(|| me.store.users_without(me.embedder_name()).ok())
                    .flatten(),
            }
        })
        .await;
        checked.unwrap_or_else(|_| Health {
            database_ok: false,
            outbox_pending: None,
            outbox_unconfirmed: None,
            outbox_oldest: None,
            free_mb: None,
            storage_ok: false,
            embedder: self.embedder_name(),
            templates: 0,
            people: 0,
            measured_people: self.recognizer.embedder().calibration().measured_people,
            identify_limit: self.identify_limit(),
            roster: None,
            cannot_recognise: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{terminal, terminal_with};

    #[tokio::test]
    async fn an_empty_terminal_is_healthy_and_a_full_disk_is_not_ok() {
        let t = terminal();
        let h = t.terminal.health().await;
        assert!(h.database_ok && h.storage_ok, "{h:?}");
        assert_eq!((h.outbox_pending, h.outbox_unconfirmed), (Some(0), Some(0)));
        assert_eq!(h.outbox_oldest, Some(None), "nothing waits");
        assert_eq!((h.embedder, h.templates, h.people), ("hog-v1", 0, 0));
        assert!(h.free_mb.is_some_and(|f| f > 0));
        let full = terminal_with(|s| s.storage.min_free_mb = u64::MAX / (1 << 20));
        let h = full.terminal.health().await;
        assert!(h.database_ok && !h.storage_ok, "{h:?}");
    }
}
