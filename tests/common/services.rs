//! Private Mosquitto and MariaDB instances for tests: their own temp dir and free loopback
//! port, so a test can stop, kill and restart them. Never mocks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::free_port;
use super::pki::Pki;

/// CA, certificate and key a server presents (and checks clients against).
#[derive(Clone)]
struct ServerTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl ServerTls {
    fn from(pki: &Pki) -> Self {
        Self {
            ca: pki.ca.clone(),
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
        }
    }
}

/// Finds a server binary, or fails saying how to install it.
fn binary(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found: install it with `sudo apt-get install {package}` (scripts/setup does)"
    );
}

fn wait_for_port(port: u16, what: &str, log: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Ours, or another test's server on a port handed out twice? Ours stays up;
            // one that lost the port exits at once.
            std::thread::sleep(Duration::from_millis(100));
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{what} exited with {status} while something else answered on {port}: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A Mosquitto broker with persistence, on a free port.
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    tls: Option<ServerTls>,
    /// Configuration after the listener's (anonymous access and persistence, unless a
    /// test gives the shipped configuration, see `common::shipped`).
    settings: String,
    /// Further addresses the broker listens on, on the same port (a door's side of a
    /// test network, see `common::netns`).
    also_on: Vec<std::net::Ipv4Addr>,
}

/// What a test broker allows unless told otherwise.
const OPEN: &str = "allow_anonymous true\npersistence true\nmax_queued_messages 0\n";

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_with(dir, None)
    }

    /// A broker on TLS only, requiring a client certificate signed by `pki`'s CA.
    pub fn start_tls(dir: &Path, pki: &Pki) -> Mosquitto {
        Self::start_with(dir, Some(ServerTls::from(pki)))
    }

    fn start_with(dir: &Path, tls: Option<ServerTls>) -> Mosquitto {
        Self::configured(dir, tls, OPEN.into())
    }

    /// A broker whose configuration after the listener is `settings`.
    pub fn start_configured(dir: &Path, settings: String) -> Mosquitto {
        Self::configured(dir, None, settings)
    }

    /// An open broker listening on `addrs` too (plain MQTT, same port).
    pub fn start_also_on(dir: &Path, addrs: &[std::net::Ipv4Addr]) -> Mosquitto {
        Self::listening(dir, None, OPEN.into(), addrs.to_vec())
    }

    fn configured(dir: &Path, tls: Option<ServerTls>, settings: String) -> Mosquitto {
        Self::listening(dir, tls, settings, Vec::new())
    }

    fn listening(
        dir: &Path,
        tls: Option<ServerTls>,
        settings: String,
        also_on: Vec<std::net::Ipv4Addr>,
    ) -> Mosquitto {
        std::fs::create_dir_all(dir).unwrap();
        let mut m = Mosquitto {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            tls,
            settings,
            also_on,
        };
        m.spawn();
        m
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        // Listener options follow their `listener` line.
        let tls = self.tls.as_ref().map_or(String::new(), |t| {
            format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
                 use_identity_as_username true\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            )
        });
        std::fs::write(
            &conf,
            format!(
                "user {user}\nlistener {port} 127.0.0.1\n{tls}{settings}\
                 persistence_location {dir}/\nautosave_interval 1\n\
                 log_dest file {dir}/mosquitto.log\nlog_type error\nlog_type warning\n\
                 log_type notice\n{also}",
                // Started as root, Mosquitto would drop to user `mosquitto`, which cannot
                // write the persistence file in our temp dir.
                user = whoami(),
                port = self.port,
                dir = self.dir.display(),
                settings = self.settings,
                also = self
                    .also_on
                    .iter()
                    .map(|a| format!("listener {} {a}\n", self.port))
                    .collect::<String>(),
            ),
        )
        .unwrap();
        let log = self.dir.join("mosquitto.log");
        let mut child = Command::new(binary("mosquitto", "mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        wait_for_port(self.port, "mosquitto", &log, &mut child);
        self.child = Some(child);
    }

    /// SIGTERM (the broker saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Publishes raw bytes with `mosquitto_pub`.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        let file = self.dir.join("payload.bin");
        std::fs::write(&file, payload).unwrap();
        let st = Command::new(binary("mosquitto_pub", "mosquitto-clients"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-f",
            ])
            .arg(&file)
            .status()
            .unwrap();
        assert!(st.success(), "mosquitto_pub failed");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A MariaDB server (MySQL-compatible) with its own data directory, on a free port.
pub struct MariaDb {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    tls: Option<ServerTls>,
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl MariaDb {
    pub fn start(dir: &Path) -> MariaDb {
        Self::start_with(dir, None)
    }

    /// A server that refuses connections without TLS (`require_secure_transport`).
    pub fn start_tls(dir: &Path, pki: &Pki) -> MariaDb {
        Self::start_with(dir, Some(ServerTls::from(pki)))
    }

    fn start_with(dir: &Path, tls: Option<ServerTls>) -> MariaDb {
        let data = dir.join("data");
        if !data.exists() {
            std::fs::create_dir_all(dir.join("tmp")).unwrap();
            let out = Command::new(binary("mariadb-install-db", "mariadb-server"))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                // Concurrent bootstraps collide in a shared /tmp.
                .arg(format!("--tmpdir={}", dir.join("tmp").display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .arg(format!("--user={}", whoami()))
                .output()
                .expect("run mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut m = MariaDb {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            tls,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let log = self.dir.join("mariadb.err");
        let tls: Vec<String> = self.tls.as_ref().map_or(Vec::new(), |t| {
            vec![
                format!("--ssl-ca={}", t.ca.display()),
                format!("--ssl-cert={}", t.cert.display()),
                format!("--ssl-key={}", t.key.display()),
                "--require-secure-transport=ON".into(),
            ]
        });
        let mut child = Command::new(binary("mariadbd", "mariadb-server"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-log-file-size=16M")
            .arg(format!("--user={}", whoami()))
            .args(&tls)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        wait_for_port(self.port, "mariadbd", &log, &mut child);
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Environment for `attendance-uplink` to use this server and `database`.
    pub fn env(&self, database: &str) -> Vec<(String, String)> {
        vec![
            ("MYSQL_HOST".into(), "127.0.0.1".into()),
            ("MYSQL_PORT".into(), self.port.to_string()),
            ("MYSQL_USER".into(), "root".into()),
            ("MYSQL_DB".into(), database.into()),
        ]
    }

    pub fn pool(&self, database: &str) -> mysql_async::Pool {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .db_name(Some(database))
            .prefer_socket(false);
        let opts = match &self.tls {
            Some(t) => {
                attendance::tls::install_crypto_provider();
                opts.ssl_opts(
                    mysql_async::SslOpts::default().with_root_certs(vec![t.ca.clone().into()]),
                )
            }
            None => opts,
        };
        mysql_async::Pool::new(opts)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
