//! HTTPS on the daemon's own listener (`http.tls_cert_file`/`tls_key_file`), for sites
//! without a TLS-terminating proxy: served over TLS only, the handshake under the header
//! timeout, and a broken TLS set-up stops start-up with the key named.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::daemon::Daemon;
use common::pki::Pki;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn connector(ca: &std::path::Path) -> TlsConnector {
    attendance::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// GET over TLS, trusting `ca`: the status and body, or the handshake error.
async fn get_tls(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    path: &str,
) -> Result<(StatusCode, Bytes), std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector(ca)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            Request::get(path)
                .header("host", "127.0.0.1")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    Ok((status, resp.into_body().collect().await.unwrap().to_bytes()))
}

fn tls_env(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        (
            "ATTENDANCED_HTTP__TLS_CERT_FILE",
            pki.server_cert.display().to_string(),
        ),
        (
            "ATTENDANCED_HTTP__TLS_KEY_FILE",
            pki.server_key.display().to_string(),
        ),
        ("ATTENDANCED_HTTP__HEADER_TIMEOUT_SECS", "1".into()),
    ]
}

#[tokio::test]
async fn https_serves_the_api_and_nothing_else_on_that_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let env = tls_env(&pki);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = Daemon::start(&dir.path().join("data"), &env);
    let addr = d.client().addr;

    let (status, body) = get_tls(addr, &pki.ca, "/health").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // Error answers are the same JSON over TLS.
    let (status, body) = get_tls(addr, &pki.ca, "/users/EMP404").await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("user_not_found"));

    // A client that does not trust the terminal's CA refuses it.
    let e = get_tls(addr, &pki.other_ca, "/health").await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("\"status\""),
        "plain HTTP was served"
    );

    // A client that connects and never starts the handshake is dropped.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a silent client is still connected after 5 s"
    );
    // ...and the server still serves.
    assert_eq!(
        get_tls(addr, &pki.ca, "/health").await.unwrap().0,
        StatusCode::OK
    );
}

#[test]
fn a_broken_tls_set_up_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let run = |env: &[(&str, &std::path::Path)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_attendanced"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("ATTENDANCED_FACE__EMBEDDER", "hog");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A certificate without its key.
    let err = run(&[("ATTENDANCED_HTTP__TLS_CERT_FILE", &pki.server_cert)]);
    assert!(err.contains("http.tls_key_file"), "{err}");
    // A key file that holds a certificate.
    let err = run(&[
        ("ATTENDANCED_HTTP__TLS_CERT_FILE", &pki.server_cert),
        ("ATTENDANCED_HTTP__TLS_KEY_FILE", &pki.server_cert),
    ]);
    assert!(err.contains("http.tls_key_file"), "{err}");
    // A missing certificate file.
    let err = run(&[
        (
            "ATTENDANCED_HTTP__TLS_CERT_FILE",
            &dir.path().join("nope.pem"),
        ),
        ("ATTENDANCED_HTTP__TLS_KEY_FILE", &pki.server_key),
    ]);
    assert!(err.contains("http.tls_cert_file"), "{err}");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_sighup_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let old = Pki::create(&dir.path().join("old"));
    let new = Pki::create(&dir.path().join("new"));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |pki: &Pki| {
        std::fs::copy(&pki.server_cert, &cert).unwrap();
        std::fs::copy(&pki.server_key, &key).unwrap();
    };
    install(&old);
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let d = Daemon::start(
        &dir.path().join("data"),
        &[
            ("ATTENDANCED_HTTP__TLS_CERT_FILE", &c),
            ("ATTENDANCED_HTTP__TLS_KEY_FILE", &k),
        ],
    );
    let addr = d.client().addr;
    assert!(get_tls(addr, &old.ca, "/health").await.is_ok());

    // Renewal: same paths, new files, SIGHUP.
    install(&new);
    d.hangup();
    let mut renewed = false;
    for _ in 0..50 {
        if get_tls(addr, &new.ca, "/health").await.is_ok() {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "new certificate not served: {}", d.log_text());
    assert!(get_tls(addr, &old.ca, "/health").await.is_err());

    // A botched renewal keeps the working certificate and says so.
    std::fs::write(&cert, "not a certificate").unwrap();
    d.hangup();
    let mut warned = false;
    for _ in 0..50 {
        if d.log_text().contains("HTTPS certificate not reloaded") {
            warned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(warned, "{}", d.log_text());
    assert_eq!(
        get_tls(addr, &new.ca, "/health").await.unwrap().0,
        StatusCode::OK
    );
}
