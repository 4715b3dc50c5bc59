//! A TCP relay that holds every chunk for a delay with jitter, each way: a slow link for
//! the bad-link tests on a kernel without `netem`. Order is kept (a chunk never overtakes
//! the one before it), as TCP would deliver it; what it cannot model is the delay seen by
//! TCP's own acknowledgements, which the relay answers locally.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Accepts on `listen` and relays each connection to `upstream`, every chunk held
/// `delay` ± `jitter` in both directions. Runs until the runtime ends.
pub async fn start(listen: SocketAddr, upstream: SocketAddr, delay: Duration, jitter: Duration) {
    let listener = TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("relay cannot listen on {listen}: {e}"));
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(dr, uw, delay, jitter));
                tokio::spawn(pump(ur, dw, delay, jitter));
            });
        }
    });
}

/// Copies `from` to `to`, each chunk released `delay` ± `jitter` after it was read (and
/// not before the previous one). End of stream is passed on once the data before it is.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    jitter: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut last = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let spread = jitter.as_secs_f64() * (2.0 * fastrand::f64() - 1.0);
                let held = Duration::from_secs_f64((delay.as_secs_f64() + spread).max(0.0));
                last = last.max(Instant::now() + held);
                if tx.send((last, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
