//! Pictures out: JPEG for the live stream, `/capture` and punch thumbnails, PNG for the
//! enrolment crops kept for re-embedding (lossless, so a new embedder sees what the old
//! one saw).

use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{width}x{height} is too large for JPEG")]
    TooLarge { width: u32, height: u32 },
    #[error("jpeg: {0}")]
    Jpeg(#[from] jpeg_encoder::EncodingError),
    #[error("png: {0}")]
    Png(#[from] image::ImageError),
}

/// Encodes with `jpeg-encoder` (3x faster than the `image` crate's encoder here).
pub fn jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let too_large = || EncodeError::TooLarge {
        width: img.width(),
        height: img.height(),
    };
    let w = u16::try_from(img.width()).map_err(|_| too_large())?;
    let h = u16::try_from(img.height()).map_err(|_| too_large())?;
    let mut out = Vec::with_capacity(64 * 1024);
    jpeg_encoder::Encoder::new(&mut out, quality).encode(
        img.as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}

pub fn png(img: &RgbImage) -> Result<Vec<u8>, EncodeError> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeLimits, decode};

    #[test]
    fn both_decode_back_to_the_picture() {
        let img = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        });
        let back = decode(&png(&img).unwrap(), &DecodeLimits::default()).unwrap();
        assert_eq!(back, img, "PNG is lossless");
        let back = decode(&jpeg(&img, 95).unwrap(), &DecodeLimits::default()).unwrap();
        assert_eq!(back.dimensions(), (64, 48));
        let worst = back
            .pixels()
            .zip(img.pixels())
            .flat_map(|(a, b)| a.0.iter().zip(b.0).map(|(x, y)| x.abs_diff(y)))
            .max()
            .unwrap();
        assert!(worst < 24, "JPEG off by {worst}");
        let wide = RgbImage::new(70_000, 1);
        assert!(matches!(jpeg(&wide, 80), Err(EncodeError::TooLarge { .. })));
    }
}
