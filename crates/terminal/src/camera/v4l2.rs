//! `v4l2:/dev/videoN`: a USB (UVC) camera through the `v4l` crate, mmap streaming. Kept
//! thin: negotiate, dequeue, hand the bytes to `convert`. Runs on its own thread (V4L2
//! calls block) and reopens the device when it disappears (cable pulled) and comes back.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use super::CameraSettings;
use super::frame::{Picture, Raw};
use super::{CameraState, Frame};

/// Opens the device and picks MJPG (preferred: less USB bandwidth) or YUYV.
fn open(path: &Path, cfg: &CameraSettings) -> std::io::Result<(Device, FourCC, u32, u32)> {
    let dev = Device::with_path(path)?;
    let mut chosen = None;
    for code in [b"MJPG", b"YUYV"] {
        let mut fmt = dev.format()?;
        fmt.width = cfg.width;
        fmt.height = cfg.height;
        fmt.fourcc = FourCC::new(code);
        let got = dev.set_format(&fmt)?;
        if got.fourcc == FourCC::new(code) {
            chosen = Some((got.fourcc, got.width, got.height));
            break;
        }
    }
    let (fourcc, w, h) = chosen.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "camera offers neither MJPG nor YUYV",
        )
    })?;
    // Best effort: some cameras refuse frame rates.
    let _ = dev.set_params(&v4l::video::capture::Parameters::with_fps(cfg.stream_fps));
    Ok((dev, fourcc, w, h))
}

/// Captures until `stop`, publishing each frame; reports the device's state (unavailable
/// once stopped).
pub(crate) fn run(
    path: &Path,
    cfg: &CameraSettings,
    frames: &watch::Sender<Option<Arc<Frame>>>,
    state: &watch::Sender<CameraState>,
    stop: &AtomicBool,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (dev, fourcc, w, h) = match open(path, cfg) {
            Ok(d) => d,
            Err(e) => {
                if *state.borrow() != CameraState::Unavailable {
                    warn!(device = %path.display(), error = %e, "camera unavailable; retrying");
                }
                let _ = state.send(CameraState::Unavailable);
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        info!(device = %path.display(), format = %fourcc, width = w, height = h, "camera streaming");
        let mut stream = match v4l::io::mmap::Stream::with_buffers(&dev, Type::VideoCapture, 4) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "camera stream failed to start");
                let _ = state.send(CameraState::Unavailable);
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        stream.set_timeout(Duration::from_secs(2));
        let _ = state.send(CameraState::Streaming);
        while !stop.load(Ordering::Relaxed) {
            let (buf, meta) = match stream.next() {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "camera lost");
                    let _ = state.send(CameraState::Unavailable);
                    break;
                }
            };
            // Copied out of the driver's buffer as is; decoded only if somebody looks
            // (see `frame`). A corrupt frame (USB hiccup) is then dropped, not fatal.
            let data = buf[..(meta.bytesused as usize).min(buf.len())].to_vec();
            let raw = if fourcc == FourCC::new(b"MJPG") {
                Raw::Mjpeg(data)
            } else {
                Raw::Yuyv {
                    data,
                    width: w,
                    height: h,
                }
            };
            seq += 1;
            let _ = frames.send(Some(Arc::new(Frame {
                seq,
                at: Instant::now(),
                picture: Picture::new(raw),
            })));
        }
    }
    // Stopped: no identification may wait for frames that will not come.
    let _ = state.send(CameraState::Unavailable);
}
