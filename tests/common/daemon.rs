//! Starts the real `attendanced` binary on a free loopback port (its client is
//! `super::client`).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::client::{Client, Reply};
pub use super::multipart::Multipart;

/// The line the daemon logs once it serves.
const READY: &str = "attendanced ready";

/// A free port on the loopback interface.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running daemon with its own data folder.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// A command the daemon runs under (`ip netns exec NAME`), empty for none.
    prefix: Vec<String>,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `attendanced serve` with `data_dir` and extra environment, and waits until
    /// `/health` answers.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(data_dir, env, &[])
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        Self::new(data_dir, env, args, loopback(), &[]).started()
    }

    /// Starts the daemon in network namespace `netns`, listening on `ip` there (the
    /// bad-link tests): `ip netns exec` execs, so the pid is the daemon's.
    pub fn start_in_netns(
        data_dir: &Path,
        env: &[(&str, &str)],
        netns: &str,
        ip: std::net::Ipv4Addr,
    ) -> Daemon {
        let prefix = ["ip", "netns", "exec", netns];
        Self::new(
            data_dir,
            env,
            &[],
            SocketAddr::from((ip, free_port())),
            &prefix,
        )
        .started()
    }

    /// A daemon not started yet: `restart` starts it (the first start, or a cut one).
    pub fn unstarted(data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::new(data_dir, env, &[], loopback(), &[])
    }

    /// This daemon, started.
    fn started(mut self) -> Daemon {
        self.spawn();
        self
    }

    fn new(
        data_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        addr: SocketAddr,
        prefix: &[&str],
    ) -> Daemon {
        Daemon {
            child: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            log: data_dir.with_extension("log"),
        }
    }

    /// The command line, environment and log of this daemon.
    fn command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let bin = env!("CARGO_BIN_EXE_attendanced");
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("RUST_LOG", "info")
            // The ready line is read from stderr, not the journal.
            .env_remove("JOURNAL_STREAM")
            // The models scripts/test fetches, wherever the test runs from. Checked:
            // with them missing, `auto` would quietly run every daemon test on HOG.
            .env("ATTENDANCED_FACE__MODELS_DIR", super::models_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the process and waits for *its* "ready" line.
    fn spawn(&mut self) {
        assert!(
            self.start_until_ready(&[]),
            "attendanced was SIGKILLed while starting: {}",
            self.log_text()
        );
    }

    /// Starts the process with `extra` environment and waits for *its* "ready" line:
    /// true once ready (the process kept running), false when it was SIGKILLed first
    /// (the power-cut layer's cut). Connecting to the port is not enough, since another
    /// test's daemon may hold a port `free_port` handed out twice (then ours fails to
    /// bind, and on a first start we try another port). Any other end fails the test.
    fn start_until_ready(&mut self, extra: &[(&str, &str)]) -> bool {
        use std::os::unix::process::ExitStatusExt;
        for attempt in 0..5 {
            let ready_before = self.log_text().matches(READY).count();
            let mut cmd = self.command();
            cmd.envs(extra.iter().copied());
            let mut child = cmd.spawn().expect("start attendanced");
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if self.log_text().matches(READY).count() > ready_before {
                    self.child = Some(child);
                    return true;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "attendanced did not become ready: {}",
                    self.log_text()
                );
                std::thread::sleep(Duration::from_millis(10));
            };
            if status.signal() == Some(9) {
                return false;
            }
            let text = self.log_text();
            if ready_before == 0 && attempt < 4 && text.contains("cannot listen") {
                self.addr.set_port(free_port());
                continue;
            }
            panic!("attendanced exited with {status}: {text}");
        }
        panic!("attendanced found no free port: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGHUP: re-read the configuration.
    pub fn hangup(&self) {
        let st = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -HUP failed");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().unwrap()
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts again with `extra` environment until the process is SIGKILLed by itself
    /// (true: a cut the power-cut layer made) or says it is ready (false: then
    /// SIGKILLed).
    pub fn run_until_cut_or_ready(&mut self, extra: &[(&str, &str)]) -> bool {
        self.kill();
        let ready = self.start_until_ready(extra);
        self.kill();
        !ready
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
