//! When to publish, when a batch is safe to mark published: the outbox sender's state,
//! pure (no socket, no database) so every broker behaviour is tested directly.
//!
//! rumqttc's `publish()` does not return the packet id, so the sender keeps exactly one
//! QoS 1 message in flight: the next PUBACK can only be for it. The packet id seen on the
//! way out is still checked when known. Status and stats go at QoS 0 so they never
//! compete for that slot.

/// The batch in flight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InFlight {
    /// Outbox sequence numbers it carries.
    pub(crate) seqs: Vec<i64>,
    pub(crate) payload: Vec<u8>,
    /// Packet id, once the event loop has written it.
    pub(crate) pkid: Option<u16>,
}

/// What the I/O loop must do next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Publish this payload (QoS 1) on the events topic.
    Publish(Vec<u8>),
    /// The broker has these: mark them published in the store.
    MarkPublished(Vec<i64>),
}

#[derive(Debug, Default)]
pub(crate) struct Sender {
    connected: bool,
    in_flight: Option<InFlight>,
}

impl Sender {
    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// Ready to load and send the next batch.
    pub(crate) fn wants_batch(&self) -> bool {
        self.connected && self.in_flight.is_none()
    }

    /// CONNACK. With the session resumed, rumqttc resends the unacknowledged batch itself;
    /// without it (a new session: broker restarted without persistence, or first contact)
    /// rumqttc drops it, so we send it again. Either way the uplink ignores a duplicate
    /// `event_id`.
    pub(crate) fn connected(&mut self, session_present: bool) -> Option<Action> {
        self.connected = true;
        match &mut self.in_flight {
            Some(f) if !session_present => {
                f.pkid = None;
                Some(Action::Publish(f.payload.clone()))
            }
            _ => None,
        }
    }

    pub(crate) fn disconnected(&mut self) {
        self.connected = false;
    }

    /// A batch was loaded from the store: send it.
    pub(crate) fn start(&mut self, seqs: Vec<i64>, payload: Vec<u8>) -> Option<Action> {
        if !self.wants_batch() || seqs.is_empty() {
            return None;
        }
        self.in_flight = Some(InFlight {
            seqs,
            payload: payload.clone(),
            pkid: None,
        });
        Some(Action::Publish(payload))
    }

    /// The event loop wrote a PUBLISH with this packet id (0 for QoS 0).
    pub(crate) fn outgoing_publish(&mut self, pkid: u16) {
        if let Some(f) = &mut self.in_flight
            && pkid != 0
        {
            f.pkid = Some(pkid);
        }
    }

    /// PUBACK: the batch in flight is the broker's now.
    pub(crate) fn puback(&mut self, pkid: u16) -> Option<Action> {
        let matches = match &self.in_flight {
            Some(f) => f.pkid.is_none_or(|p| p == pkid),
            None => false,
        };
        if !matches {
            return None;
        }
        self.in_flight.take().map(|f| Action::MarkPublished(f.seqs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(p: &[u8]) -> Option<Action> {
        Some(Action::Publish(p.to_vec()))
    }

    #[test]
    fn one_batch_at_a_time_marked_only_on_its_puback() {
        let mut s = Sender::default();
        assert!(!s.wants_batch(), "not before CONNACK");
        assert_eq!(s.start(vec![1], b"a".to_vec()), None);
        assert_eq!(s.connected(false), None);
        assert_eq!(s.start(vec![1, 2], b"a".to_vec()), publish(b"a"));
        assert!(!s.wants_batch());
        assert_eq!(s.start(vec![3], b"b".to_vec()), None, "still one in flight");
        s.outgoing_publish(0); // a QoS 0 status message
        s.outgoing_publish(7);
        assert_eq!(s.puback(8), None, "someone else's ack");
        assert_eq!(s.puback(7), Some(Action::MarkPublished(vec![1, 2])));
        assert!(s.wants_batch());
        assert_eq!(s.puback(7), None, "acked once");
    }

    #[test]
    fn reconnect_resends_only_when_the_session_is_new() {
        let mut s = Sender::default();
        s.connected(true);
        s.start(vec![5], b"x".to_vec());
        s.outgoing_publish(1);
        s.disconnected();
        assert!(!s.is_connected());
        // Session resumed: rumqttc retransmits, we wait.
        assert_eq!(s.connected(true), None);
        s.disconnected();
        // Session lost: we publish again and forget the old packet id.
        assert_eq!(s.connected(false), publish(b"x"));
        assert_eq!(s.in_flight().unwrap().pkid, None);
        s.outgoing_publish(1);
        assert_eq!(s.puback(1), Some(Action::MarkPublished(vec![5])));
    }

    #[test]
    fn empty_batches_are_not_sent() {
        let mut s = Sender::default();
        s.connected(false);
        assert_eq!(s.start(vec![], vec![]), None);
        assert!(s.wants_batch());
    }
}
