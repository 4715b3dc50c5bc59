//! The live view: each new frame drawn with the overlay and encoded to JPEG once, for
//! every viewer, only while somebody watches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attendance_core::shutdown::Shutdown;
use attendance_face::encode;
use bytes::Bytes;
use image::RgbImage;

use super::{Camera, overlay};

/// The stream's and `/capture`'s JPEG (`None` only for a frame too large for JPEG).
pub(super) fn encode_jpeg(img: &RgbImage, quality: u8) -> Option<Bytes> {
    encode::jpeg(img, quality).ok().map(Bytes::from)
}

/// Draws and encodes each new frame (at most `stream_fps` a second) while at least one
/// viewer watches. Driven by frame arrival, so capture and stream do not drift apart.
pub(super) async fn run(camera: Arc<Camera>, mut stop: Shutdown) {
    let min_gap = Duration::from_secs_f64(0.9 / f64::from(camera.settings.stream_fps.max(1)));
    let mut frames = camera.frames.clone();
    let mut last = Instant::now() - min_gap;
    loop {
        tokio::select! {
            changed = frames.changed() => if changed.is_err() { break },
            _ = stop.recv() => break,
        }
        let Some(frame) = frames.borrow_and_update().clone() else {
            continue;
        };
        if camera.stream.receiver_count() == 0 || last.elapsed() < min_gap {
            continue;
        }
        last = Instant::now();
        let cam = camera.clone();
        let jpeg = tokio::task::spawn_blocking(move || {
            let a = cam.latest_analysis();
            let img = overlay::draw(
                frame.rgb()?,
                a.as_deref(),
                &cam.pipeline.config.quality.ellipse,
                cam.locale.get(),
            );
            encode_jpeg(&img, cam.settings.jpeg_quality)
        })
        .await;
        if let Ok(Some(jpeg)) = jpeg {
            let _ = camera.stream.send(Some(jpeg));
        }
    }
    // Viewers see the end of the stream.
    let _ = camera.stream.send(None);
}
