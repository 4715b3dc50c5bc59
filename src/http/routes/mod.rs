//! One handler per endpoint (after mini-redis's `cmd/`).

pub mod attendance;
pub mod capture;
pub mod enroll;
pub mod health;
pub mod identify;
pub mod status;
pub mod stream;
pub mod users;
