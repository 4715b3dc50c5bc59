//! The `attendance-uplink` binary under test, started and restarted by the tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `attendance-uplink` binary as a child process.
pub struct Uplink {
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl Uplink {
    pub fn start(log: &Path, env: Vec<(String, String)>) -> Uplink {
        let mut u = Uplink {
            child: None,
            env,
            log: log.to_path_buf(),
        };
        u.spawn();
        u
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_attendance-uplink"));
        cmd.arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start attendance-uplink"));
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
                c.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => false,
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client of the metrics listener (`metrics_listen = "127.0.0.1:0"`), at the
    /// address the uplink reports in its log.
    pub async fn metrics_client(&self) -> super::daemon::Client {
        super::wait_until(
            "the uplink's metrics listener",
            Duration::from_secs(30),
            || async {
                let log = std::fs::read_to_string(&self.log).ok()?;
                let addr = log
                    .lines()
                    .find(|l| l.contains("metrics listener ready"))?
                    .split("listen=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(super::daemon::Client { addr })
            },
        )
        .await
    }

    /// `attendance-uplink ARGS` run once with `env`: (success, stdout + stderr).
    pub fn command(env: &[(String, String)], args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_attendance-uplink"))
            .args(args)
            .envs(env.iter().cloned())
            .output()
            .expect("run attendance-uplink");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.kill();
    }
}
