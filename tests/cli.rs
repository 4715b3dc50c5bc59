//! The `attendanced` command line: configuration layering and errors, admin commands.

mod common;

use std::process::{Command, Output};

use common::daemon::Daemon;

fn attendanced(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_attendanced"));
    c.args(args).env_remove("RUST_LOG");
    for k in [
        "TOLERANCE",
        "IMAGE_DIR",
        "ENCODING_DIR",
        "STREAM_FPS",
        "CAMERA_DEVICE_INDEX",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_specs_environment_names_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.toml");
    std::fs::write(
        &file,
        "locale = \"en\"\n[face]\ntolerance = 0.4\n[camera]\nstream_fps = 10\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = attendanced(&["--config", f, "config"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("locale = \"en\""), "{out}");
    assert!(out.contains("tolerance = 0.4"), "{out}");
    let o = attendanced(
        &["--config", f, "config"],
        &[
            ("TOLERANCE", "0.25"),
            ("STREAM_FPS", "15"),
            ("IMAGE_DIR", "/srv/img"),
            ("CAMERA_DEVICE_INDEX", "1"),
            ("ATTENDANCED_DEVICE_ID", "GATE_2"),
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    for want in [
        "tolerance = 0.25",
        "stream_fps = 15",
        "image_dir = \"/srv/img\"",
        "source = \"v4l2:/dev/video1\"",
        "device_id = \"GATE_2\"",
    ] {
        assert!(out.contains(want), "missing {want} in\n{out}");
    }
}

#[test]
fn bad_config_is_one_line_naming_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Env, &str); 5] = [
        ("[face]\ntolerance = \"abc\"\n", &[], "face.tolerance"),
        ("[face]\ntolerence = 0.3\n", &[], "tolerence"),
        ("", &[("TOLERANCE", "5")], "face.tolerance"),
        ("", &[("STREAM_FPS", "many")], "camera.stream_fps"),
        ("device_id = \"a b\"\n", &[], "device_id"),
    ];
    for (i, (toml, env, key)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let o = attendanced(&["--config", file.to_str().unwrap(), "config"], env);
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(key), "case {i}: {err}");
    }
    let o = attendanced(&["--config", "/nonexistent.toml", "config"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test]
async fn users_commands_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("ATTENDANCED_DATA_DIR", data.to_str().unwrap())];
    let o = attendanced(&["migrate"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("version 6"));
    // Enrol two people through a running daemon, then administer from the CLI while it runs.
    let d = Daemon::start(&data, &[]);
    let c = d.client();
    assert_eq!(
        c.enrol("홍길동", &common::read("caltech_p02/2.jpg"))
            .await
            .json()["employee_id"],
        "EMP001"
    );
    assert_eq!(
        c.enrol("Kim", &common::read("_unenrolled/caltech_u01/1.jpg"))
            .await
            .json()["employee_id"],
        "EMP002"
    );
    let o = attendanced(&["users", "list"], &env);
    let out = stdout(&o);
    assert!(
        out.contains("EMP001") && out.contains("홍길동") && out.contains("dlib-resnet-v1"),
        "{out}"
    );
    // Nothing learned through the API (walk-ups teach): nothing to erase, the person
    // stays; an unknown id is an error.
    let o = attendanced(&["users", "unlearn", "EMP001"], &env);
    assert!(
        stdout(&o).contains("EMP001: 0 learned templates erased"),
        "{}",
        stderr(&o)
    );
    let o = attendanced(&["users", "unlearn", "EMP404"], &env);
    assert!(!o.status.success() && stderr(&o).contains("EMP404"));
    let o = attendanced(&["users", "delete", "EMP001"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    // The running daemon notices and no longer recognises EMP001.
    let r = c
        .identify("IN", &common::read("caltech_p02/3.jpg"))
        .await
        .json();
    assert_eq!(r["reason"], "unknown", "{r}");
    let o = attendanced(&["users", "delete", "EMP001"], &env);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("EMP001"));
    let o = attendanced(&["users", "reset"], &env);
    assert!(!o.status.success(), "reset needs --yes");
    let o = attendanced(&["users", "reset", "--yes"], &env);
    assert!(stdout(&o).contains("deleted 1 users"), "{}", stdout(&o));
    assert_eq!(c.get("/users").await.json()["count"], 0);
}

#[test]
fn the_example_config_file_is_valid() {
    let f = concat!(env!("CARGO_MANIFEST_DIR"), "/config/attendanced.toml");
    let o = attendanced(&["--config", f, "config"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("data_dir = \"/var/lib/attendanced\""));
}

#[test]
fn uplink_config_example_and_the_specs_mysql_names() {
    let f = concat!(env!("CARGO_MANIFEST_DIR"), "/config/attendance-uplink.toml");
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_attendance-uplink"));
        c.args(["--config", f, "config"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = run(&[("MYSQL_HOST", "db.internal"), ("MYSQL_DB", "hr_attendance")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("host = \"db.internal\"") && out.contains("database = \"hr_attendance\""),
        "{out}"
    );
    let o = run(&[("MYSQL_PORT", "abc")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("mysql.port"), "{}", stderr(&o));
}

#[test]
fn a_second_daemon_on_the_same_database_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Daemon::start(&data, &[]);
    let data_arg = data.to_str().unwrap();
    let second = attendanced(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg],
        &[("ATTENDANCED_FACE__EMBEDDER", "hog")],
    );
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains("another attendanced") && err.contains(&first.pid().to_string()),
        "{err}"
    );
    // The kernel releases the lock however the holder dies: after a SIGKILL the next
    // daemon starts (Daemon::start fails the test unless it comes up listening).
    first.kill();
    let _again = Daemon::start(&data, &[]);
}
