//! One handler per endpoint (after mini-redis's `cmd/`).

pub mod attendance;
pub mod enroll;
pub mod health;
pub mod identify;
pub mod users;
