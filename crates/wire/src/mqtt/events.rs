//! A cancel-safe way to poll rumqttc's event loop from a `select!`.
//!
//! `EventLoop::poll` is not cancel-safe while it connects: dropping it between the TCP
//! connect and the CONNACK drops the half-made connection. On loopback the CONNACK comes
//! in microseconds, so the loops' one-second ticks never hit it; behind a link with a
//! second of latency each way every attempt was cancelled by a tick and the door never
//! connected (found by `tests/bad_links.rs`). [`Events`] keeps the poll in progress
//! across cancellations instead.

use std::future::Future;
use std::pin::Pin;

use rumqttc::{ConnectionError, Event, EventLoop};

type Polled = (EventLoop, Result<Event, ConnectionError>);

/// The event loop and the poll in progress, if any.
pub struct Events {
    next: Pin<Box<dyn Future<Output = Polled> + Send>>,
}

/// One poll, owning the loop so that the future can outlive a cancelled `select!` arm.
/// Lazy: nothing happens (no reconnect) until it is polled.
fn poll_once(mut events: EventLoop) -> Pin<Box<dyn Future<Output = Polled> + Send>> {
    Box::pin(async move {
        let polled = events.poll().await;
        (events, polled)
    })
}

impl Events {
    pub fn new(events: EventLoop) -> Events {
        Events {
            next: poll_once(events),
        }
    }

    /// The next event, as `EventLoop::poll`; dropping this future before it completes
    /// loses nothing: the next call goes on where it stopped.
    pub async fn poll(&mut self) -> Result<Event, ConnectionError> {
        let (events, polled) = (&mut self.next).await;
        self.next = poll_once(events);
        polled
    }
}
