//! Bytes → upright RGB frame, refusing anything that would cost more memory than a door
//! terminal can spare.
//!
//! The limits are checked from the header, before any pixel buffer is allocated, so a
//! 60000x60000 PNG (a "decompression bomb") fails in microseconds.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// Decoder limits. Defaults fit a phone photo (4000x3000 = 12 MP) with room to spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest encoded input accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width or height accepted, in pixels.
    pub max_side: u32,
    /// Largest pixel count accepted.
    pub max_pixels: u64,
    /// Smallest width or height accepted: below this there is no face to find.
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_side: 8192,
            max_pixels: 24_000_000,
            min_side: 48,
        }
    }
}

/// Why bytes could not become a frame. All of them map to the `bad_image` reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty image")]
    Empty,
    #[error("image is {0} bytes, over the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("not a JPEG, PNG, BMP or PPM/PGM image")]
    UnknownFormat,
    #[error("image is {0}x{1}, outside the accepted {2}..={3} pixels per side")]
    BadDimensions(u32, u32, u32, u32),
    #[error("image has {0} pixels, over the {1}-pixel limit")]
    TooManyPixels(u64, u64),
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
}

/// Decodes JPEG/PNG/BMP/PNM bytes into an RGB image with EXIF orientation applied.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge(bytes.len(), limits.max_bytes));
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnknownFormat)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp | ImageFormat::Pnm
    ) {
        return Err(DecodeError::UnknownFormat);
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "JPEG ends before its end-of-image marker".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Width and height are checked below from the header; this bounds decoder scratch.
    let mut image_limits = Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h, limits)?;
    // A broken EXIF block must not reject an otherwise good photo.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// The size of a PNG from its header, checked against `limits`; no pixel is decoded. What
/// a crop from elsewhere (a roster face) is checked with before it travels on.
pub fn png_dimensions(bytes: &[u8], limits: &DecodeLimits) -> Result<(u32, u32), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge(bytes.len(), limits.max_bytes));
    }
    if image::guess_format(bytes).ok() != Some(ImageFormat::Png) {
        return Err(DecodeError::UnknownFormat);
    }
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png)
        .into_dimensions()
        .map_err(corrupt)?;
    check_dimensions(w, h, limits)?;
    Ok((w, h))
}

/// Whether a JPEG's main image is complete: an end-of-image marker (FF D9) follows its
/// first scan. The decoder pads a truncated file with grey and reports success; a cut-off
/// upload must be refused instead. Segments before the scan are skipped by their length,
/// so an EXIF thumbnail's own markers are not mistaken for the image's; inside scan data
/// FF is always stuffed (FF 00) or a restart marker, so FF D9 there is the real end.
/// (Written by hand: no decoder exposes this check, and it is a dozen lines.)
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xDA {
            return b[i..].windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        i += 2 + len;
    }
    false
}

fn check_dimensions(w: u32, h: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    let side_ok = |s: u32| (limits.min_side..=limits.max_side).contains(&s);
    if !side_ok(w) || !side_ok(h) {
        return Err(DecodeError::BadDimensions(
            w,
            h,
            limits.min_side,
            limits.max_side,
        ));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(DecodeError::TooManyPixels(pixels, limits.max_pixels));
    }
    Ok(())
}

fn corrupt(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Limits(l) => DecodeError::Corrupt(format!("decoder limit: {l}")),
        other => DecodeError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_truncated_jpeg_is_refused_and_a_complete_one_is_not() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 9]));
        let mut jpeg = Cursor::new(Vec::new());
        img.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
        let jpeg = jpeg.into_inner();
        assert!(decode(&jpeg, &DecodeLimits::default()).is_ok());
        // Bytes after the end marker (phones append data there) are fine.
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"vendor trailer");
        assert!(decode(&trailing, &DecodeLimits::default()).is_ok());
        for cut in [jpeg.len() - 2, jpeg.len() / 2, 40] {
            assert!(
                matches!(
                    decode(&jpeg[..cut], &DecodeLimits::default()),
                    Err(DecodeError::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn png_dimensions_come_from_the_header() {
        let l = DecodeLimits::default();
        assert_eq!(png_dimensions(&png(64, 50), &l), Ok((64, 50)));
        let small = DecodeLimits { max_side: 60, ..l };
        assert!(matches!(
            png_dimensions(&png(64, 50), &small),
            Err(DecodeError::BadDimensions(64, 50, _, 60))
        ));
        assert_eq!(png_dimensions(b"", &l), Err(DecodeError::Empty));
        assert_eq!(
            png_dimensions(b"GIF89a....", &l),
            Err(DecodeError::UnknownFormat)
        );
        let mut jpeg = Cursor::new(Vec::new());
        RgbImage::new(64, 64)
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(
            png_dimensions(&jpeg.into_inner(), &l),
            Err(DecodeError::UnknownFormat),
            "crops are PNG"
        );
        assert!(png_dimensions(&png(64, 50)[..20], &l).is_err());
    }

    #[test]
    fn decodes_png() {
        let img = decode(&png(64, 50), &DecodeLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (64, 50));
        assert_eq!(img.get_pixel(3, 3).0, [10, 20, 30]);
    }

    #[test]
    fn rejects_empty_and_garbage() {
        let l = DecodeLimits::default();
        assert_eq!(decode(&[], &l), Err(DecodeError::Empty));
        assert_eq!(
            decode(b"hello world, not an image", &l),
            Err(DecodeError::UnknownFormat)
        );
    }

    #[test]
    fn rejects_truncated() {
        let bytes = png(64, 64);
        let err = decode(&bytes[..bytes.len() / 2], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn rejects_tiny_and_oversized_sides() {
        let l = DecodeLimits::default();
        assert!(matches!(
            decode(&png(1, 1), &l),
            Err(DecodeError::BadDimensions(1, 1, _, _))
        ));
        let l = DecodeLimits {
            max_side: 100,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode(&png(200, 60), &l),
            Err(DecodeError::BadDimensions(200, 60, _, _))
        ));
    }

    #[test]
    fn rejects_by_byte_size_before_parsing() {
        let l = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode(&png(64, 64), &l),
            Err(DecodeError::TooLarge(_, 10))
        ));
    }
}
