//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), behind the
//! `fuzzing` feature so they do not ship in the product. Each body lives in the crate whose
//! code it drives; `tests/fuzz_replay.rs` replays every committed seed and finding.

pub use attendance_face::fuzz::image_upload;
pub use attendance_terminal::fuzz::{BOUNDARY, request_form};
pub use attendance_uplink::fuzz::event_message;
