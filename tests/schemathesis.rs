//! schemathesis (PyPI) fuzzes the API from its own `/openapi.json`, against a real
//! daemon with a replayed camera: once open (no keys, as the spec has it) and once with
//! keys. It must find no 5xx, no schema-valid request refused, no answer or header
//! outside the document, and (with keys) no request let through without a valid one.
//!
//! Left out: the endless streams (`/stream.mjpeg`, `/events`, `/status` as events,
//! whose answers the integration tests check against the same document), the `/v1/`
//! copies of every path, and `negative_data_rejection` (it counts an unknown HTTP
//! header as invalid input; the API ignores headers it does not use).
//! `tests/schemathesis/hooks.py` puts a real photo in every `image`: no schema can say
//! that an image must decode.

mod common;

use std::path::PathBuf;
use std::process::Command;

use attendance::http::auth::hash_key;
use common::daemon::Daemon;

/// The `st` that `scripts/setup` installs, or a failure saying how to get it.
fn st() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let st = target.join("schemathesis-venv/bin/st");
    assert!(
        st.is_file(),
        "{} not found: scripts/setup installs schemathesis (pip, into target/schemathesis-venv)",
        st.display()
    );
    st
}

/// Runs schemathesis against `d` with `extra` arguments; fails with its report.
fn fuzz(d: &Daemon, extra: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(st())
        .arg("run")
        .arg(format!("http://{}/openapi.json", d.addr))
        .args(["--max-examples", "5", "--request-timeout", "10", "-w", "1"])
        .args([
            "--exclude-path-regex",
            r"^(/v1/.*|/stream\.mjpeg|/events|/status)$",
        ])
        .args(["--checks", "all"])
        .args(["--seed", "20261205"])
        .args(extra)
        .env("PYTHONPATH", root.join("tests/schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: String = report.lines().rev().take(25).collect::<Vec<_>>().join("\n");
    eprintln!("{summary}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{}\n{}",
        report.chars().take(20_000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed"), "{report}");
}

fn camera_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ATTENDANCED_CAMERA__IDENTIFY_WINDOW_MS", "500"),
        ("ATTENDANCED_CAMERA__ENROL_WINDOW_MS", "500"),
    ]
}

fn demo() -> String {
    format!("replay:{}/assets/demo", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_open_api_holds_to_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let camera = demo();
    let d = Daemon::start_with(dir.path(), &camera_env(), &["--camera", &camera]);
    // With no keys the API is open, as documented: nothing for ignored_auth to find.
    fuzz(
        &d,
        &["--exclude-checks", "ignored_auth,negative_data_rejection"],
    );
    assert!(!d.log_text().contains("internal error"), "{}", d.log_text());
}

#[test]
fn the_api_with_keys_holds_to_its_document_and_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attendanced.toml");
    std::fs::write(
        &file,
        format!(
            "[auth]\nadmin_key_sha256 = [\"{}\"]\ndevice_key_sha256 = [\"{}\"]\n",
            hash_key("admin-key"),
            hash_key("door-key")
        ),
    )
    .unwrap();
    let camera = demo();
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &camera_env(),
        &["--config", file.to_str().unwrap(), "--camera", &camera],
    );
    fuzz(
        &d,
        &[
            "-H",
            "X-API-Key: admin-key",
            "--exclude-checks",
            "negative_data_rejection",
        ],
    );
    assert!(!d.log_text().contains("internal error"), "{}", d.log_text());
}
