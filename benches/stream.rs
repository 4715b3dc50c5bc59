//! CPU cost of the live view: the daemon replaying a 640x480 camera at 20 fps with the
//! overlay, measured from /proc with 0, 1, 2, 3 and 5 viewers of `/stream.mjpeg`, and with
//! no viewer while camera identifications follow each other (the analysis then embeds
//! every face it sees; otherwise it runs detection and the gates only).
//!
//! `cargo bench --bench stream`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::cpu_percent;
use common::daemon::Daemon;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// Reads the stream until dropped; counts bytes.
async fn viewer(addr: std::net::SocketAddr) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/stream.mjpeg")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    while let Some(Ok(_)) = body.frame().await {}
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo");
    let d = Daemon::start_with(
        &dir.path().join("data"),
        &[("STREAM_FPS", "20")],
        &["--camera", &format!("replay:{demo}")],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let measure = |n: usize| {
        let addr = d.addr;
        let pid = d.pid();
        async move {
            let viewers: Vec<_> = (0..n).map(|_| tokio::spawn(viewer(addr))).collect();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let pct = cpu_percent(pid, Duration::from_secs(5)).await;
            viewers.iter().for_each(|v| v.abort());
            tokio::time::sleep(Duration::from_millis(300)).await;
            pct
        }
    };
    let mut rows = Vec::new();
    for n in [0usize, 1, 2, 3, 5] {
        rows.push((n, measure(n).await));
    }
    // MODE_A requests back to back: an analysis window is always open.
    let client = d.client();
    let waiting = tokio::spawn(async move {
        loop {
            let r = client
                .post_json("/identify", &serde_json::json!({ "type": "IN" }))
                .await;
            assert_ne!(r.status, 500, "{:?}", r.json());
        }
    });
    let identifying = measure(0).await;
    waiting.abort();
    let base = rows[0].1;
    let one = rows[1].1;
    let per_extra = (rows[4].1 - one) / 4.0;
    println!();
    println!("640x480 replay at 20 fps, analysis at 5 fps, overlay + JPEG (jpeg-encoder, q80):");
    println!("| viewers | CPU (% of one core) |");
    println!("|---|---|");
    for (n, pct) in &rows {
        println!("| {n} | {pct:.1} |");
    }
    println!("| first viewer (1 - 0) | {:.1} |", one - base);
    println!("| each extra viewer ((5 - 1) / 4) | {per_extra:.1} |");
    println!("| 0, camera identifications back to back | {identifying:.1} |");
}
