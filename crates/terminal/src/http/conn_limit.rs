//! How many connections the listener holds: in all (below the process's descriptor
//! limit, so a flood of half-open requests cannot starve SQLite, the camera or the
//! broker link of descriptors) and per peer (so one host cannot take them all and
//! `/health` still answers everyone else). Beyond either, a connection is closed as soon
//! as it is accepted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Total,
    Peer,
}

#[derive(Debug)]
pub(crate) struct ConnLimits {
    total: usize,
    per_peer: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// Holds one connection's place; gives it back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<ConnLimits>,
    peer: IpAddr,
}

impl ConnLimits {
    pub(crate) fn new(total: usize, per_peer: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            total,
            per_peer,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a connection from `peer`, if there is one.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Over> {
        let mut open = self.lock();
        if open.total >= self.total {
            return Err(Over::Total);
        }
        let n = open.by_peer.entry(peer).or_default();
        if *n >= self.per_peer {
            return Err(Over::Peer);
        }
        *n += 1;
        open.total += 1;
        Ok(Slot {
            limits: self.clone(),
            peer,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_cannot_take_every_place_and_places_come_back() {
        let l = ConnLimits::new(5, 3);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let held: Vec<Slot> = (0..3).map(|_| l.admit(a).unwrap()).collect();
        assert_eq!(l.admit(a).unwrap_err(), Over::Peer);
        let b1 = l.admit(b).unwrap();
        let _b2 = l.admit(b).unwrap();
        assert_eq!(l.admit([10, 0, 0, 3].into()).unwrap_err(), Over::Total);
        drop(b1);
        assert!(l.admit([10, 0, 0, 3].into()).is_ok(), "a place came back");
        drop(held);
        assert_eq!(l.total(), 1);
        assert!(
            !l.lock().by_peer.contains_key(&a),
            "a peer with none open is forgotten"
        );
    }
}
