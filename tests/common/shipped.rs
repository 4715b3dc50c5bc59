//! A broker configured as shipped: `config/mosquitto-attendance.conf` as it is (its
//! paths moved into the test's folder) and `config/mosquitto-acl.conf`, its door block
//! copied once per door, with a password per account. What the rogue-door suite attacks.

use std::path::Path;
use std::process::Command;

use super::services::Mosquitto;

/// The shipped uplink worker's broker user.
pub const UPLINK_USER: &str = "attendance-uplink";

/// The password a test gives `user`.
pub fn password(user: &str) -> String {
    format!("pw-{user}")
}

/// The broker user of door `device` of `site` (as the ACL's example names them).
pub fn door_user(site: &str, device: &str) -> String {
    format!("{site}-{device}")
}

/// The shipped ACL with its example door block (hq-A) copied for each door.
fn acl(doors: &[(&str, &str)]) -> String {
    let shipped = include_str!("../../config/mosquitto-acl.conf");
    let start = shipped.find("user hq-A\n").expect("the ACL's door block");
    let block_len = shipped[start..].find("\n\n").expect("the block ends");
    let block = &shipped[start..start + block_len];
    let mut out = shipped.to_owned();
    for (site, device) in doors.iter().filter(|d| **d != ("hq", "A")) {
        out.push_str(
            &block
                .replace("user hq-A", &format!("user {}", door_user(site, device)))
                .replace("attendance/hq/A/", &format!("attendance/{site}/{device}/"))
                .replace("attendance/hq/roster", &format!("attendance/{site}/roster")),
        );
        out.push_str("\n\n");
    }
    out
}

/// Starts the shipped broker in `dir` with accounts for the uplink, a dashboard and
/// each of `doors` (`(site, device)`).
pub fn start(dir: &Path, doors: &[(&str, &str)]) -> Mosquitto {
    std::fs::create_dir_all(dir).unwrap();
    let passwd = dir.join("attendance.passwd");
    let mut users = vec![UPLINK_USER.to_owned(), "dashboard".into()];
    users.extend(doors.iter().map(|(s, d)| door_user(s, d)));
    for (i, user) in users.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let st = cmd
            .arg("-b")
            .arg(&passwd)
            .arg(user)
            .arg(password(user))
            .status()
            .expect("mosquitto_passwd (package mosquitto; scripts/setup installs it)");
        assert!(st.success(), "mosquitto_passwd {user}");
    }
    let acl_file = dir.join("attendance.acl");
    std::fs::write(&acl_file, acl(doors)).unwrap();
    let conf = include_str!("../../config/mosquitto-attendance.conf")
        .replace(
            "/etc/mosquitto/attendance.passwd",
            &passwd.display().to_string(),
        )
        .replace(
            "/etc/mosquitto/attendance.acl",
            &acl_file.display().to_string(),
        );
    Mosquitto::start_configured(dir, conf)
}
