//! The .deb: built by scripts/package-deb, installed with dpkg into a throwaway root
//! (maintainer scripts run chrootless against that root), then purged.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .arg("--force-not-root")
        .arg(format!("--log={}", root.join("dpkg.log").display()));
    c
}

#[test]
fn deb_installs_into_a_throwaway_root_and_purges_clean() {
    let work = tempfile::tempdir().unwrap();
    // The test binaries, without their debug info (the package is about layout).
    let bins = work.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    for (name, path) in [
        ("attendanced", env!("CARGO_BIN_EXE_attendanced")),
        ("attendance-uplink", env!("CARGO_BIN_EXE_attendance-uplink")),
    ] {
        run(Command::new("strip")
            .arg("-o")
            .arg(bins.join(name))
            .arg(path));
    }
    let out = work.path().join("out");
    let deb = run(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package-deb"))
            .arg("--bin-dir")
            .arg(&bins)
            .arg("--out")
            .arg(&out),
    );
    let deb = deb.trim();
    assert!(deb.ends_with(".deb"), "{deb}");
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for f in [
        "./usr/bin/attendanced",
        "./usr/bin/attendance-uplink",
        "./lib/systemd/system/attendanced.service",
        "./etc/attendanced/attendanced.toml",
        "./usr/share/attendance/migrations/sqlite/0001_init.sql",
        "./usr/share/attendance/migrations/mysql/0001_init.sql",
    ] {
        assert!(
            contents.contains(f),
            "{f} missing from the package:\n{contents}"
        );
    }

    // A minimal root: dpkg's database and the account files useradd edits.
    let root = work.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nvideo:x:44:\n").unwrap();
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    std::fs::write(root.join("etc/gshadow"), "root:*::\nvideo:!::\n").unwrap();

    run(dpkg(&root).args(["--force-depends", "-i", deb]));
    let status = run(dpkg(&root).args(["-s", "attendance"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(
        status.contains("/etc/attendanced/attendanced.toml"),
        "conffiles: {status}"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\nattendanced:") && passwd.contains("\nattendance-uplink:"),
        "{passwd}"
    );
    assert!(root.join("usr/bin/attendanced").is_file());
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let state = std::fs::metadata(root.join("var/lib/attendanced")).unwrap();
    assert_eq!(state.permissions().mode() & 0o777, 0o700);
    let uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with("attendanced:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|u| u.parse().ok())
        .unwrap();
    assert_eq!(
        state.uid(),
        uid,
        "state directory owned by the service user"
    );
    // The installed binary runs from the root.
    let v = run(Command::new(root.join("usr/bin/attendanced")).arg("--version"));
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");

    // Reinstalling (an upgrade) keeps the users and an edited conffile.
    let conf = root.join("etc/attendanced/attendanced.toml");
    let edited = format!(
        "{}\n# edited by the operator\n",
        std::fs::read_to_string(&conf).unwrap()
    );
    std::fs::write(&conf, &edited).unwrap();
    run(dpkg(&root).args(["--force-depends", "--force-confold", "-i", deb]));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);

    // Purge erases the state (face data) and the configuration.
    run(dpkg(&root).args(["--purge", "attendance"]));
    assert!(!root.join("var/lib/attendanced").exists());
    assert!(!root.join("usr/bin/attendanced").exists());
    assert!(!conf.exists());
}
