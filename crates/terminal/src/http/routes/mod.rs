//! One handler per endpoint (after mini-redis's `cmd/`).

pub(crate) mod attendance;
pub(crate) mod capture;
pub(crate) mod enroll;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod identify;
pub(crate) mod metrics;
pub(crate) mod openapi;
pub(crate) mod pages;
pub(crate) mod punch_mode;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod stream;
pub(crate) mod users;

use crate::answer::PunchInput;
use crate::http::request::Fields;
use crate::http::response::ApiError;
use crate::terminal::input;

/// `type`, `device_id` and `ts_client`: the punch fields `/identify` and `/attendance`
/// share.
fn punch_input(f: &Fields) -> Result<PunchInput, ApiError> {
    Ok(PunchInput {
        request: input::punch_request("type", f.get("type"))?,
        device_id: input::opt_id("device_id", f.get("device_id"))?,
        ts_client: input::ts_client("ts_client", f.get("ts_client"))?,
    })
}
