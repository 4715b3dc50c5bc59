//! Biometric data at rest: files private to the service user, encrypted when a key is
//! configured (`storage.encryption_key_file`), unreadable without it; plaintext refused
//! once a key is set, and sealed by `attendanced seal-store` the day encryption is
//! turned on.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemon::Daemon;

const ALICE: &str = "caltech_p02/2.jpg";
const ALICE_AGAIN: &str = "caltech_p02/3.jpg";
const SEAL_MAGIC: &[u8] = b"ATSEAL1\0";

fn new_key(path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .arg("new-storage-key")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under the template and image folders.
fn biometric_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["encodings", "images"] {
        let dir = data.join(sub);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700,
            "{}",
            dir.display()
        );
        for e in std::fs::read_dir(&dir).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    assert!(!out.is_empty(), "no biometric files written");
    out
}

fn key_env(key: &Path) -> Vec<(&'static str, &str)> {
    vec![(
        "ATTENDANCED_STORAGE__ENCRYPTION_KEY_FILE",
        key.to_str().unwrap(),
    )]
}

async fn identified_as(d: &Daemon) -> serde_json::Value {
    let r = d
        .client()
        .identify("IN", &common::read(ALICE_AGAIN))
        .await
        .json();
    r["employee_id"].clone()
}

#[tokio::test]
async fn sealed_with_the_key_and_useless_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("storage.key");
    new_key(&key);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mut d = Daemon::start(&data, &key_env(&key));
    let r = d.client().enrol("홍길동", &common::read(ALICE)).await;
    assert_eq!(r.status, hyper::StatusCode::OK, "{}", r.json());
    for f in biometric_files(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            bytes.starts_with(SEAL_MAGIC),
            "{} is not sealed",
            f.display()
        );
        assert!(
            !bytes
                .windows(6)
                .any(|w| w == b"\x93NUMPY" || w == b"\x89PNG\r\n"),
            "{} holds plaintext",
            f.display()
        );
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(identified_as(&d).await, "EMP001");
    // After a restart the gallery is loaded by decrypting.
    assert!(d.stop().success());
    let mut d = Daemon::start(&data, &key_env(&key));
    assert_eq!(identified_as(&d).await, "EMP001");
    assert!(d.stop().success());

    // Without the key nobody is recognised, and the log says why.
    let mut d = Daemon::start(&data, &[]);
    assert_eq!(identified_as(&d).await, serde_json::Value::Null);
    assert!(d.stop().success());
    let log = d.log_text();
    assert!(
        log.contains("no storage.encryption_key_file"),
        "log does not explain: {log}"
    );
    // With another key: the same, and the files are left as they were.
    let other = dir.path().join("other.key");
    new_key(&other);
    let before: Vec<Vec<u8>> = biometric_files(&data)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let d = Daemon::start(&data, &key_env(&other));
    assert_eq!(identified_as(&d).await, serde_json::Value::Null);
    assert!(d.log_text().contains("cannot be decrypted"));
    let after: Vec<Vec<u8>> = biometric_files(&data)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(before, after, "a wrong key must not touch the files");
}

#[tokio::test]
async fn turning_encryption_on_refuses_plaintext_until_seal_store_seals_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    d.client().enrol("A", &common::read(ALICE)).await;
    assert!(d.stop().success());
    let plain: Vec<Vec<u8>> = biometric_files(&data)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(plain.iter().all(|b| !b.starts_with(SEAL_MAGIC)));

    // With a key set, a plaintext file is what anyone who can write the card could
    // plant under someone's name: refused, left as it is, and the log says what to run.
    let key = dir.path().join("storage.key");
    new_key(&key);
    let mut d = Daemon::start(&data, &key_env(&key));
    assert_eq!(identified_as(&d).await, serde_json::Value::Null);
    assert!(d.stop().success());
    assert!(
        d.log_text().contains("attendanced seal-store"),
        "{}",
        d.log_text()
    );
    let after: Vec<Vec<u8>> = biometric_files(&data)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(plain, after, "refused files are not rewritten");

    // The explicit migration seals them; the terminal then knows the person again.
    let out = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .arg("seal-store")
        .env("ATTENDANCED_DATA_DIR", &data)
        .envs(key_env(&key))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("sealed {} files", plain.len())),
        "{text}"
    );
    for f in biometric_files(&data) {
        assert!(
            std::fs::read(&f).unwrap().starts_with(SEAL_MAGIC),
            "{} left in plaintext",
            f.display()
        );
    }
    let d = Daemon::start(&data, &key_env(&key));
    assert_eq!(identified_as(&d).await, "EMP001");
    // Without a key there is nothing to seal with.
    let out = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .arg("seal-store")
        .env("ATTENDANCED_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn rotating_the_key_re_seals_everything_under_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (old, new) = (dir.path().join("old.key"), dir.path().join("new.key"));
    new_key(&old);
    new_key(&new);
    let mut d = Daemon::start(&data, &key_env(&old));
    d.client().enrol("A", &common::read(ALICE)).await;
    assert!(d.stop().success());
    let sealed_old: Vec<Vec<u8>> = biometric_files(&data)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();

    // Rotation: the new key current, the old one listed as previous.
    let mut env = key_env(&new);
    let previous = format!("[\"{}\"]", old.display());
    env.push(("ATTENDANCED_STORAGE__PREVIOUS_KEY_FILES", &previous));
    let mut d = Daemon::start(&data, &env);
    assert_eq!(identified_as(&d).await, "EMP001");
    assert!(d.stop().success());
    assert!(d.log_text().contains("under the current storage key"));
    for (f, before) in biometric_files(&data).iter().zip(&sealed_old) {
        let now = std::fs::read(f).unwrap();
        assert!(now.starts_with(SEAL_MAGIC), "{}", f.display());
        assert_ne!(&now, before, "{} not re-sealed", f.display());
    }
    // The old key can go: the new one alone opens everything.
    let d = Daemon::start(&data, &key_env(&new));
    assert_eq!(identified_as(&d).await, "EMP001");
    assert!(!d.log_text().contains("no configured storage key opens"));
}

#[test]
fn key_files_others_can_read_or_overwriting_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("storage.key");
    new_key(&key);
    // Never overwrites: a lost key is every template lost.
    let again = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .arg("new-storage-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_attendanced"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("ATTENDANCED_STORAGE__ENCRYPTION_KEY_FILE", &key)
        .env("ATTENDANCED_FACE__EMBEDDER", "hog")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage.encryption_key_file") && err.contains("chmod 600"),
        "{err}"
    );
}
