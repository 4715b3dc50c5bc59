//! Operations: the systemd units verify, the daemon speaks the notify protocol (READY,
//! STATUS, WATCHDOG, RELOADING, STOPPING), SIGHUP reloads what can change live, and under
//! systemd logs become native journald entries with structured fields.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::Daemon;

fn systemd_analyze() -> &'static str {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        ok,
        "systemd-analyze not found: install it with `apt-get install systemd` (scripts/setup does)"
    );
    "systemd-analyze"
}

/// A copy of a unit whose ExecStart points at the binaries cargo just built.
fn unit_copy(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name);
    let text = std::fs::read_to_string(&src).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_attendanced"))
        .parent()
        .unwrap();
    let text = text.replace("/usr/bin/", &format!("{}/", bin_dir.display()));
    let out = dir.join(name);
    std::fs::write(&out, text).unwrap();
    out
}

#[test]
fn units_verify_and_are_hardened() {
    let tool = systemd_analyze();
    let dir = tempfile::tempdir().unwrap();
    for unit in ["attendanced.service", "attendance-uplink.service"] {
        let path = unit_copy(unit, dir.path());
        let o = Command::new(tool)
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && err.trim().is_empty(), "{unit}: {err}");
        let o = Command::new(tool)
            .args(["security", "--offline=true", "--threshold=25"])
            .arg(&path)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let score: f32 = out
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no exposure level in {out}"));
        assert!(
            score <= 2.0,
            "{unit}: exposure {score} (docs/book quotes ≤ 2.0)"
        );
    }
}

#[test]
fn the_kiosk_unit_verifies_and_starts_after_the_daemon() {
    // cage is not installed here: a stand-in command checks the rest of the unit.
    let tool = systemd_analyze();
    let dir = tempfile::tempdir().unwrap();
    unit_copy("attendanced.service", dir.path());
    let kiosk = unit_copy("attendance-kiosk.service", dir.path());
    let text = std::fs::read_to_string(&kiosk).unwrap();
    assert!(text.contains("Requires=attendanced.service"));
    assert!(text.contains("After=attendanced.service"));
    assert!(text.contains("--app=http://127.0.0.1:5000/"));
    let cage = text
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("ExecStart=")
                .filter(|c| c.ends_with("/cage"))
        })
        .expect("ExecStart runs cage")
        .to_owned();
    std::fs::write(&kiosk, text.replace(&cage, "/bin/true")).unwrap();
    let o = Command::new(tool)
        .current_dir(dir.path())
        .arg("verify")
        .arg(&kiosk)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.trim().is_empty(), "{err}");
}

/// Collects notify datagrams until `want` has been seen or the deadline passes.
fn wait_for(sock: &UnixDatagram, seen: &mut Vec<String>, want: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if seen
            .iter()
            .any(|m| m.lines().any(|l| l == want || l.starts_with(want)))
        {
            return;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    panic!("no {want:?} from the daemon; got {seen:?}");
}

#[test]
fn notify_protocol_watchdog_sighup_and_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.path().join("attendanced.toml");
    std::fs::write(&config, "locale = \"ko\"\n").unwrap();
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap().to_owned();
    let mut d = Daemon::start_with(
        &data,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
        &["--config", &config_arg],
    );
    let mut seen = Vec::new();
    wait_for(&sock, &mut seen, "READY=1", 30);
    wait_for(&sock, &mut seen, "STATUS=camera", 10);
    // Fed every half second while healthy.
    seen.clear();
    wait_for(&sock, &mut seen, "WATCHDOG=1", 5);

    // Live settings change on SIGHUP; the rest is named as needing a restart.
    std::fs::write(
        &config,
        "locale = \"en\"\n[face]\ntolerance = 0.42\n[camera]\nstream_fps = 5\n",
    )
    .unwrap();
    d.hangup();
    seen.clear();
    wait_for(&sock, &mut seen, "RELOADING=1", 10);
    wait_for(&sock, &mut seen, "READY=1", 10);
    let log = d.log_text();
    assert!(log.contains("SIGHUP: configuration reloaded"), "{log}");
    assert!(log.contains("camera.stream_fps"), "{log}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(
        d.client()
            .identify("IN", &common::read("_unenrolled/caltech_u01/1.jpg")),
    );
    let r = r.json();
    assert_eq!(
        r["decided_threshold"].as_f64().map(|t| (t * 100.0).round()),
        Some(42.0),
        "{r}"
    );
    assert_eq!(
        r["message"], "Face not recognised",
        "the default language is now English: {r}"
    );

    seen.clear();
    let status = d.stop();
    assert!(status.success(), "{status:?}");
    wait_for(&sock, &mut seen, "STOPPING=1", 5);
}

#[test]
fn under_systemd_logs_are_native_journald_entries_with_fields() {
    // journald's socket is a fixed path: give the daemon its own /run in a private mount
    // namespace, with our datagram socket where journald's would be.
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let unshare = Command::new("unshare").arg("--version").output();
    assert!(unshare.is_ok(), "unshare not found: install util-linux");
    let data = dir.path().join("data");
    let port = common::daemon::free_port();
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
         touch /run/systemd/journal/socket && mount --bind {sock} /run/systemd/journal/socket && \
         exec {bin} serve --listen 127.0.0.1:{port} --data-dir {data}",
        sock = sock_path.display(),
        bin = env!("CARGO_BIN_EXE_attendanced"),
        data = data.display(),
    );
    let mut child = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", &script])
        .env("JOURNAL_STREAM", "8:1234")
        .env("ATTENDANCED_CAMERA__SOURCE", "none")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut entries: Vec<Vec<(String, String)>> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let has = |entries: &[Vec<(String, String)>], key: &str, value: &str| {
        entries
            .iter()
            .any(|e| e.iter().any(|(k, v)| k == key && v.contains(value)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !has(&entries, "MESSAGE", "attendanced ready") {
        if let Ok(n) = sock.recv(&mut buf) {
            entries.push(parse_entry(&buf[..n]));
        }
    }
    // A failed attempt logs REASON and EVENT_ID.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = common::daemon::Client {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let r = rt.block_on(client.identify("IN", &common::read("_negatives/no_face_chart.jpg")));
    assert_eq!(r.json()["reason"], "no_face");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !has(&entries, "REASON", "no_face") {
        if let Ok(n) = sock.recv(&mut buf) {
            entries.push(parse_entry(&buf[..n]));
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        has(&entries, "MESSAGE", "attendanced ready"),
        "no journald entries: {entries:?}; stderr: {stderr}"
    );
    assert!(
        has(&entries, "SYSLOG_IDENTIFIER", "attendanced"),
        "{entries:?}"
    );
    assert!(
        has(&entries, "PRIORITY", "6"),
        "info level is priority 6: {entries:?}"
    );
    let failed = entries
        .iter()
        .find(|e| e.iter().any(|(k, v)| k == "REASON" && v == "no_face"))
        .expect("an entry with REASON=no_face");
    assert!(
        failed.iter().any(|(k, v)| k == "EVENT_ID" && !v.is_empty()),
        "{failed:?}"
    );
    // Nothing went to stderr: journald only.
    assert!(out.stderr.is_empty(), "{stderr}");
}

/// journald's native protocol: `NAME=value\n`, or `NAME\n` + 64-bit LE length + value +
/// `\n` for values that may hold newlines.
fn parse_entry(mut b: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !b.is_empty() {
        let Some(nl) = b.iter().position(|&c| c == b'\n') else {
            break;
        };
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            b = &b[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.push((
                name,
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            ));
            b = &rest[8 + len + 1..];
        }
    }
    fields
}
