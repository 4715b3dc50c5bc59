//! What the API suites share: the photos they use and the attendance log they read.

use hyper::StatusCode;
use serde_json::Value;

use super::daemon::Daemon;

/// Employee photo and another photo of the same person.
pub const ALICE: &str = "caltech_p02/2.jpg";
pub const ALICE_AGAIN: &str = "caltech_p02/3.jpg";
/// Somebody never enrolled.
pub const STRANGER: &str = "_unenrolled/caltech_u01/1.jpg";
pub const GROUP: &str = "_negatives/group_selfie_many_faces.jpg";

pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The whole attendance log (a failed read fails the test).
pub async fn attendance(d: &Daemon) -> Vec<Value> {
    let r = d.client().get("/attendance?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["records"].as_array().unwrap().clone()
}
