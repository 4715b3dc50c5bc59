//! A captured frame, decoded when first looked at. A camera delivers 15-30 frames a
//! second; the analysis takes five and the stream draws only while somebody watches, so
//! most frames are never decoded (~1 ms each for 640x480 on the build machine, so no
//! measurable gain there; a board's slower core decodes for longer).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use image::RgbImage;

use super::convert::{mjpeg_to_rgb, yuyv_to_rgb};
use attendance_face::{DecodeLimits, decode::decode};

/// The pixels as the source gave them.
#[derive(Debug)]
pub(crate) enum Raw {
    /// A UVC camera's Motion-JPEG frame (Huffman tables may be missing).
    Mjpeg(Vec<u8>),
    /// Packed YUYV 4:2:2.
    Yuyv {
        data: Vec<u8>,
        width: u32,
        height: u32,
    },
    /// A replayed image file, in any format the uploads accept.
    File(Vec<u8>),
}

/// A source picture and, once somebody looked, its decoding. The replay shows one
/// picture for several frames and decodes it once.
#[derive(Debug)]
pub(crate) struct Picture {
    raw: Raw,
    rgb: OnceLock<Option<RgbImage>>,
}

impl Picture {
    pub(crate) fn new(raw: Raw) -> Arc<Picture> {
        Arc::new(Picture {
            raw,
            rgb: OnceLock::new(),
        })
    }

    /// The pixels; None for a picture that does not decode (a USB hiccup, a damaged
    /// file), which its readers skip like a dropped frame.
    pub(crate) fn rgb(&self) -> Option<&RgbImage> {
        self.rgb
            .get_or_init(|| {
                let limits = DecodeLimits::default();
                match &self.raw {
                    Raw::Mjpeg(data) => mjpeg_to_rgb(data, &limits).ok(),
                    Raw::Yuyv {
                        data,
                        width,
                        height,
                    } => yuyv_to_rgb(data, *width, *height),
                    Raw::File(data) => decode(data, &limits).ok(),
                }
            })
            .as_ref()
    }

    #[cfg(test)]
    fn decoded(&self) -> bool {
        self.rgb.get().is_some()
    }
}

/// One captured frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) seq: u64,
    pub(crate) at: Instant,
    pub(crate) picture: Arc<Picture>,
}

impl Frame {
    /// The frame's pixels, decoded on first use; None when they do not decode.
    pub(crate) fn rgb(&self) -> Option<&RgbImage> {
        self.picture.rgb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Vec<u8> {
        let p = concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/assets/demo/2_grace_hopper.jpg"
        );
        std::fs::read(p).unwrap()
    }

    #[test]
    fn a_picture_is_decoded_once_and_only_when_looked_at() {
        let p = Picture::new(Raw::File(demo()));
        assert!(!p.decoded(), "nothing decoded before anyone looks");
        let first = p.rgb().expect("the demo photo decodes") as *const RgbImage;
        assert!(p.decoded());
        assert_eq!(p.rgb().unwrap().dimensions(), (640, 480));
        assert_eq!(p.rgb().unwrap() as *const RgbImage, first, "decoded once");
    }

    #[test]
    fn each_raw_kind_decodes_and_damage_is_none() {
        let mjpeg = Picture::new(Raw::Mjpeg(demo()));
        assert_eq!(mjpeg.rgb().unwrap().dimensions(), (640, 480));
        // Two pixels: black, then white (Y 16 / 235, neutral chroma).
        let yuyv = Picture::new(Raw::Yuyv {
            data: vec![16, 128, 235, 128],
            width: 2,
            height: 1,
        });
        let rgb = yuyv.rgb().unwrap();
        assert!(rgb.get_pixel(0, 0).0.iter().all(|&v| v < 5), "{rgb:?}");
        assert!(rgb.get_pixel(1, 0).0.iter().all(|&v| v > 250), "{rgb:?}");
        let mut cut = demo();
        cut.truncate(200);
        assert!(Picture::new(Raw::Mjpeg(cut.clone())).rgb().is_none());
        assert!(Picture::new(Raw::File(cut)).rgb().is_none());
        let short = Picture::new(Raw::Yuyv {
            data: vec![0; 3],
            width: 2,
            height: 1,
        });
        assert!(short.rgb().is_none());
    }
}
