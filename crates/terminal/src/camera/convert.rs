//! Pixel formats a USB camera delivers, turned into RGB. Pure functions, tested on real
//! bytes; the device code only moves buffers.

use std::borrow::Cow;

use image::RgbImage;

use attendance_face::{DecodeError, DecodeLimits, decode::decode};

/// YUYV 4:2:2 (Y0 U Y1 V per two pixels), BT.601 limited range, as UVC cameras send it.
pub(crate) fn yuyv_to_rgb(data: &[u8], width: u32, height: u32) -> Option<RgbImage> {
    let need = width as usize * height as usize * 2;
    if width == 0 || height == 0 || data.len() < need || !width.is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for px in data[..need].chunks_exact(4) {
        let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
        push_rgb(&mut out, y0, u, v);
        push_rgb(&mut out, y1, u, v);
    }
    RgbImage::from_raw(width, height, out)
}

/// Integer BT.601 (studio swing) to RGB, the same fixed-point constants as libyuv.
fn push_rgb(out: &mut Vec<u8>, y: u8, u: u8, v: u8) {
    let c = (i32::from(y) - 16).max(0) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    out.push(clamp(c + 409 * e));
    out.push(clamp(c - 100 * d - 208 * e));
    out.push(clamp(c + 516 * d));
}

/// The standard Huffman tables of JPEG Annex K.3, as one DHT segment. Many UVC cameras
/// send MJPEG frames without tables (the decoder is expected to use these); decoders
/// that do not know the convention need them inserted.
const STANDARD_DHT: &[u8] = &[
    0xFF, 0xC4, 0x01, 0xA2, // DHT, length 418
    // DC luminance
    0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, //
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, //
    // AC luminance
    0x10, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D, //
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
    0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
    0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA, //
    // DC chrominance
    0x01, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, //
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, //
    // AC chrominance
    0x11, 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77, //
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
    0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
    0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

/// Inserts the standard Huffman tables before the first SOS when a frame has none.
pub(crate) fn ensure_huffman_tables(jpeg: &[u8]) -> Cow<'_, [u8]> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Cow::Borrowed(jpeg);
    }
    // Walk the marker segments up to the scan.
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return Cow::Borrowed(jpeg);
        }
        let marker = jpeg[i + 1];
        match marker {
            0xC4 => return Cow::Borrowed(jpeg), // has tables
            0xDA => {
                let mut out = Vec::with_capacity(jpeg.len() + STANDARD_DHT.len());
                out.extend_from_slice(&jpeg[..i]);
                out.extend_from_slice(STANDARD_DHT);
                out.extend_from_slice(&jpeg[i..]);
                return Cow::Owned(out);
            }
            0xFF => i += 1, // fill byte
            0xD0..=0xD7 | 0x01 => i += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
                i += 2 + len;
            }
        }
    }
    Cow::Borrowed(jpeg)
}

/// One MJPG frame to RGB, tolerating frames without Huffman tables.
pub(crate) fn mjpeg_to_rgb(jpeg: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    decode(&ensure_huffman_tables(jpeg), limits)
}

/// Splits a Motion-JPEG file (concatenated JPEGs) into frames, SOI to EOI.
pub(crate) fn split_mjpeg(data: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xFF {
            match data[i + 1] {
                0xD8 if start.is_none() => start = Some(i),
                0xD9 => {
                    if let Some(s) = start.take() {
                        frames.push(&data[s..i + 2]);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RGB → YUYV with BT.601 limited range (what a camera does), for round trips.
    fn rgb_to_yuyv(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        for row in img.rows() {
            let px: Vec<_> = row.collect();
            for pair in px.chunks(2) {
                let yuv = |p: &image::Rgb<u8>| {
                    let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
                    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
                    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
                    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
                    (y, u, v)
                };
                let (y0, u0, v0) = yuv(pair[0]);
                let (y1, u1, v1) = yuv(pair[1]);
                out.extend([y0, (u0 + u1) / 2.0, y1, (v0 + v1) / 2.0].map(|x| x.round() as u8));
            }
        }
        out
    }

    fn photo() -> RgbImage {
        let path = concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/assets/demo/2_grace_hopper.jpg"
        );
        image::open(path).unwrap().to_rgb8()
    }

    #[test]
    fn yuyv_reference_values() {
        // Black, white, and a saturated red in studio swing.
        let px = yuyv_to_rgb(&[16, 128, 235, 128], 2, 1).unwrap();
        assert_eq!(px.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(px.get_pixel(1, 0).0, [255, 255, 255]);
        let red = yuyv_to_rgb(&[81, 90, 81, 240], 2, 1).unwrap();
        let [r, g, b] = red.get_pixel(0, 0).0;
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }

    #[test]
    fn yuyv_round_trip_of_a_real_photo() {
        let img = photo();
        let back = yuyv_to_rgb(&rgb_to_yuyv(&img), img.width(), img.height()).unwrap();
        let err: f64 = img
            .as_raw()
            .iter()
            .zip(back.as_raw())
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / img.as_raw().len() as f64;
        // Chroma is shared by two pixels: small, not zero.
        assert!(err < 4.0, "mean abs error {err}");
    }

    #[test]
    fn yuyv_refuses_short_or_odd_buffers() {
        assert!(yuyv_to_rgb(&[0; 7], 2, 2).is_none());
        assert!(yuyv_to_rgb(&[0; 12], 3, 2).is_none());
        assert!(yuyv_to_rgb(&[], 0, 0).is_none());
    }

    /// Removes every DHT segment, as a UVC camera's MJPG frame arrives.
    fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        loop {
            let marker = jpeg[i + 1];
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[i..]);
                return out;
            }
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
    }

    #[test]
    fn mjpg_frames_without_huffman_tables_decode() {
        // A baseline JPEG with the standard tables, like a camera's encoder makes.
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&photo())
            .unwrap();
        let bare = strip_dht(&jpeg);
        assert!(bare.len() < jpeg.len());
        let limits = DecodeLimits::default();
        assert!(
            decode(&bare, &limits).is_err(),
            "the bare frame really lacks tables"
        );
        let a = mjpeg_to_rgb(&jpeg, &limits).unwrap();
        let b = mjpeg_to_rgb(&bare, &limits).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn split_concatenated_jpegs() {
        let one = std::fs::read(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/assets/demo/2_grace_hopper.jpg"
        ))
        .unwrap();
        let mut file = one.clone();
        file.extend_from_slice(b"\r\n--frame\r\n");
        file.extend_from_slice(&one);
        let frames = split_mjpeg(&file);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], &one[..]);
    }
}
