//! The aligned face chip the ResNet was trained on: dlib's `get_face_chip_details(shape,
//! 150, 0.25)` and `extract_image_chip` (bilinear, with dlib's image pyramid when the
//! chip is much smaller than the face), reproduced so the network sees what it expects.

use image::RgbImage;

/// dlib's 5-point face template in the unit square (left eye outer, left eye inner,
/// right eye outer, right eye inner, nose base; from interpolation.h).
const TEMPLATE: [[f64; 2]; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// Where the chip lies in the image: a rotated rectangle (dlib's `chip_details`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChipDetails {
    /// `(left, top, right, bottom)`, inclusive, before rotation.
    pub rect: [f64; 4],
    pub angle: f64,
    pub size: u32,
}

/// The chip geometry for five landmarks.
pub(crate) fn face_chip_details(landmarks: &[[f64; 2]; 5], size: u32, padding: f64) -> ChipDetails {
    let s = f64::from(size);
    let k = 1.0 / (2.0 * padding + 1.0);
    let from: Vec<[f64; 2]> = TEMPLATE
        .iter()
        .map(|p| [(padding + p[0]) * k * s, (padding + p[1]) * k * s])
        .collect();
    let (m, b) = similarity(&from, landmarks);
    let angle = m[2].atan2(m[0]);
    let scale = (m[0] * m[0] + m[2] * m[2]).sqrt();
    let half = s / 2.0;
    let cx = m[0] * half + m[1] * half + b[0];
    let cy = m[2] * half + m[3] * half + b[1];
    let w = s * scale - 1.0;
    ChipDetails {
        rect: [cx - w / 2.0, cy - w / 2.0, cx + w / 2.0, cy + w / 2.0],
        angle,
        size,
    }
}

/// Least-squares similarity transform `to ≈ m·from + b` (2-D Umeyama, closed form).
fn similarity(from: &[[f64; 2]], to: &[[f64; 2]; 5]) -> ([f64; 4], [f64; 2]) {
    let n = from.len() as f64;
    let mean = |v: &mut dyn Iterator<Item = [f64; 2]>| {
        let s = v.fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    let mf = mean(&mut from.iter().copied());
    let mt = mean(&mut to.iter().copied());
    let (mut a, mut b, mut norm) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (x, y) = (f[0] - mf[0], f[1] - mf[1]);
        let (u, v) = (t[0] - mt[0], t[1] - mt[1]);
        a += x * u + y * v;
        b += x * v - y * u;
        norm += x * x + y * y;
    }
    let (a, b) = if norm > 0.0 {
        (a / norm, b / norm)
    } else {
        (1.0, 0.0)
    };
    let m = [a, -b, b, a];
    let t = [
        mt[0] - (m[0] * mf[0] + m[1] * mf[1]),
        mt[1] - (m[2] * mf[0] + m[3] * mf[1]),
    ];
    (m, t)
}

fn area(r: &[f64; 4]) -> f64 {
    if r[1] > r[3] || r[0] > r[2] {
        return 0.0;
    }
    (r[2] - r[0] + 1.0) * (r[3] - r[1] + 1.0)
}

/// One step down dlib's 2:1 image pyramid, in rectangle coordinates.
fn rect_down(r: &[f64; 4]) -> [f64; 4] {
    [
        r[0] / 2.0 - 1.25,
        r[1] / 2.0 - 0.75,
        r[2] / 2.0 - 1.25,
        r[3] / 2.0 - 0.75,
    ]
}

fn rotate(center: [f64; 2], p: [f64; 2], angle: f64) -> [f64; 2] {
    let (s, c) = angle.sin_cos();
    let (x, y) = (p[0] - center[0], p[1] - center[1]);
    [center[0] + c * x - s * y, center[1] + s * x + c * y]
}

/// dlib's `pyramid_down<2>`: 5-tap [1 4 6 4 1] filter, 2:1, integer arithmetic.
fn pyramid_down(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w <= 8 || h <= 8 {
        return RgbImage::new(0, 0);
    }
    let tw = (w - 3) / 2;
    let src = img.as_raw();
    let mut rows = vec![0u32; h * tw * 3];
    for y in 0..h {
        for c in 0..tw {
            for ch in 0..3 {
                let at = |x: usize| u32::from(src[(y * w + x) * 3 + ch]);
                let o = 2 * c;
                rows[(y * tw + c) * 3 + ch] =
                    at(o) + 4 * at(o + 1) + 6 * at(o + 2) + 4 * at(o + 3) + at(o + 4);
            }
        }
    }
    let th = (h - 3) / 2;
    let mut out = RgbImage::new(tw as u32, th as u32);
    let dst: &mut [u8] = &mut out;
    let mut r = 2;
    let mut dr = 0;
    while r + 2 < h && dr < th {
        for c in 0..tw {
            for ch in 0..3 {
                let at = |y: usize| rows[(y * tw + c) * 3 + ch];
                let v = at(r - 2) + 4 * at(r - 1) + 6 * at(r) + 4 * at(r + 1) + at(r + 2);
                dst[(dr * tw + c) * 3 + ch] = (v / 256) as u8;
            }
        }
        dr += 1;
        r += 2;
    }
    out
}

/// Samples the chip: bilinear, truncated to `u8`, black where the 2x2 neighbourhood
/// leaves the image.
pub(crate) fn extract(img: &RgbImage, d: &ChipDetails) -> RgbImage {
    let size = d.size;
    let (iw, ih) = (img.width() as f64, img.height() as f64);
    // How many pyramid steps dlib takes before sampling (none unless the chip is at
    // least ~2x smaller than the face region).
    let mut source_owned = None;
    let mut rect = d.rect;
    if area(&rect_down(&rect)) > f64::from(size * size) {
        let center = [(rect[0] + rect[2]) / 2.0, (rect[1] + rect[3]) / 2.0];
        let corners = [
            [rect[0], rect[1]],
            [rect[2], rect[1]],
            [rect[0], rect[3]],
            [rect[2], rect[3]],
        ]
        .map(|c| rotate(center, c, d.angle));
        let mut depth_rect = rect_down(&rect);
        let mut grow = 2.0;
        while area(&rect_down(&depth_rect)) > f64::from(size * size) {
            depth_rect = rect_down(&depth_rect);
            grow = grow * 2.0 + 2.0;
        }
        let min = |i: usize| corners.iter().map(|c| c[i]).fold(f64::INFINITY, f64::min);
        let max = |i: usize| {
            corners
                .iter()
                .map(|c| c[i])
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let clip = [
            (min(0) - grow).max(0.0),
            (min(1) - grow).max(0.0),
            (max(0) + grow).min(iw - 1.0),
            (max(1) + grow).min(ih - 1.0),
        ];
        let round = |v: f64| (v + 0.5).floor();
        let bb = [
            round(clip[0]),
            round(clip[1]),
            round(clip[2]),
            round(clip[3]),
        ];
        if bb[0] <= bb[2] && bb[1] <= bb[3] {
            let mut level_img = image::imageops::crop_imm(
                img,
                bb[0] as u32,
                bb[1] as u32,
                (bb[2] - bb[0] + 1.0) as u32,
                (bb[3] - bb[1] + 1.0) as u32,
            )
            .to_image();
            rect = [
                rect[0] - bb[0],
                rect[1] - bb[1],
                rect[2] - bb[0],
                rect[3] - bb[1],
            ];
            while area(&rect_down(&rect)) > f64::from(size * size) {
                rect = rect_down(&rect);
                level_img = pyramid_down(&level_img);
            }
            rect = rect_down(&rect);
            level_img = pyramid_down(&level_img);
            source_owned = Some(level_img);
        }
    }
    let source = source_owned.as_ref().unwrap_or(img);
    let center = [(rect[0] + rect[2]) / 2.0, (rect[1] + rect[3]) / 2.0];
    let tl = rotate(center, [rect[0], rect[1]], d.angle);
    let tr = rotate(center, [rect[2], rect[1]], d.angle);
    let bl = rotate(center, [rect[0], rect[3]], d.angle);
    let n = f64::from(size.max(2) - 1);
    // Affine map from chip (col, row) to source (x, y) through three corners.
    let m = [
        (tr[0] - tl[0]) / n,
        (bl[0] - tl[0]) / n,
        (tr[1] - tl[1]) / n,
        (bl[1] - tl[1]) / n,
    ];
    let (sw, sh) = (source.width() as i64, source.height() as i64);
    let src = source.as_raw();
    let mut out = RgbImage::new(size, size);
    let dst: &mut [u8] = &mut out;
    for r in 0..size as usize {
        for c in 0..size as usize {
            let (cf, rf) = (c as f64, r as f64);
            let px = m[0] * cf + m[1] * rf + tl[0];
            let py = m[2] * cf + m[3] * rf + tl[1];
            let (left, top) = (px.floor() as i64, py.floor() as i64);
            if left < 0 || top < 0 || left + 1 >= sw || top + 1 >= sh {
                continue;
            }
            let (fx, fy) = (px - left as f64, py - top as f64);
            let at = |x: i64, y: i64, ch: usize| f64::from(src[((y * sw + x) * 3) as usize + ch]);
            for ch in 0..3 {
                let top_v = (1.0 - fx) * at(left, top, ch) + fx * at(left + 1, top, ch);
                let bot_v = (1.0 - fx) * at(left, top + 1, ch) + fx * at(left + 1, top + 1, ch);
                dst[(r * size as usize + c) * 3 + ch] = ((1.0 - fy) * top_v + fy * bot_v) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_landmarks_give_an_upright_chip_around_them() {
        // Landmarks exactly where the template puts them in a 150 px chip at padding 0.25:
        // the chip is the identity window.
        let k = 1.0 / 1.5;
        let pts = TEMPLATE.map(|p| {
            [
                (0.25 + p[0]) * k * 150.0 + 40.0,
                (0.25 + p[1]) * k * 150.0 + 10.0,
            ]
        });
        let d = face_chip_details(&pts, 150, 0.25);
        assert!(d.angle.abs() < 1e-9);
        assert!((d.rect[0] - 40.0 - 0.5).abs() < 1e-6, "{d:?}");
        assert!((d.rect[2] - d.rect[0] - 149.0).abs() < 1e-6, "{d:?}");
        // Sampling that window from a gradient image returns the pixels themselves.
        let img = RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let chip = extract(
            &img,
            &ChipDetails {
                rect: [40.0, 10.0, 189.0, 159.0],
                angle: 0.0,
                size: 150,
            },
        );
        assert_eq!(chip.get_pixel(0, 0).0, [40, 10, 7]);
        assert_eq!(chip.get_pixel(149, 149).0, [189, 159, 7]);
    }

    #[test]
    fn outside_the_image_is_black_and_big_faces_use_the_pyramid() {
        let img = RgbImage::from_pixel(120, 120, image::Rgb([200, 100, 50]));
        let chip = extract(
            &img,
            &ChipDetails {
                rect: [-60.0, -60.0, 89.0, 89.0],
                angle: 0.3,
                size: 150,
            },
        );
        assert_eq!(chip.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(chip.get_pixel(120, 120).0, [200, 100, 50]);
        let big = RgbImage::from_pixel(1000, 1000, image::Rgb([90, 90, 90]));
        let chip = extract(
            &big,
            &ChipDetails {
                rect: [100.0, 100.0, 699.0, 699.0],
                angle: 0.1,
                size: 150,
            },
        );
        // Flat grey survives the 5-tap filter (up to integer truncation).
        let v = chip.get_pixel(75, 75).0[0];
        assert!((88..=90).contains(&v), "{v}");
    }
}
