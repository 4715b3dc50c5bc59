//! The convolutions and pools against their definitions, a batch against one image at a
//! time, and a file that is not the model refused.

use super::layers::Conv;
use super::ops::*;
use super::*;

type ConvFn = fn(&[f32], Map, &Conv, &mut Vec<f32>, &mut Vec<f32>) -> Map;

/// The convolution by its definition, for one image of a `C x B x H x W` batch.
fn direct(input: &[f32], m: Map, l: &Conv, image: usize, f: usize, y: usize, x: usize) -> f32 {
    let (k, s, p) = (l.kernel, l.stride, l.padding);
    let mut sum = l.bias[f];
    for c in 0..m.c {
        for ky in 0..k {
            for kx in 0..k {
                let (iy, ix) = (
                    (y * s + ky) as isize - p as isize,
                    (x * s + kx) as isize - p as isize,
                );
                if (0..m.h as isize).contains(&iy) && (0..m.w as isize).contains(&ix) {
                    let plane = (c * m.b + image) * m.h * m.w;
                    sum += input[plane + iy as usize * m.w + ix as usize]
                        * l.weights[((c * k + ky) * k + kx) * l.filters + f];
                }
            }
        }
    }
    sum
}

#[test]
fn conv_matches_a_direct_computation() {
    // 3 filters over the stem's and the blocks' stride and padding, one image and a
    // batch of three; the 64-channel maps are large enough to be shifted (stride 1)
    // and to span several im2col bands (stride 2).
    let cases = [
        (2, 3, 1, 1, 5),
        (2, 3, 2, 0, 5),
        (2, 7, 2, 0, 5),
        (2, 2, 1, 0, 5),
        (64, 3, 1, 1, 40),
        (64, 3, 2, 0, 40),
    ];
    for (c, k, stride, padding, size) in cases {
        for b in [1, 3] {
            let m = Map {
                c,
                b,
                h: size + k,
                w: size + 2 + k,
            };
            if c == 64 && stride == 2 {
                let (oh, ow) = ((m.h - k) / stride + 1, (m.w - k) / stride + 1);
                assert!(c * k * k * ow * b * oh > 2 * BAND, "must span bands");
            }
            let input: Vec<f32> = (0..m.len()).map(|i| (i as f32 * 0.37).sin()).collect();
            let l = Conv {
                filters: 3,
                channels: c,
                kernel: k,
                stride,
                padding,
                weights: (0..3 * c * k * k)
                    .map(|i| (i as f32 * 0.11).cos())
                    .collect(),
                bias: vec![0.5, -0.25, 0.0],
            };
            // Both ways where both apply: `conv` picks by map size.
            let same = stride == 1 && 2 * padding + 1 == k;
            let ways: &[ConvFn] = if same {
                &[conv_im2col, conv_shifted]
            } else {
                &[conv_im2col]
            };
            for way in ways {
                let (mut out, mut cols) = (Vec::new(), Vec::new());
                let o = way(&input, m, &l, &mut out, &mut cols);
                assert_eq!((o.c, o.b), (3, b));
                assert_eq!(o.h, (m.h + 2 * padding - k) / stride + 1);
                assert_eq!(o.w, (m.w + 2 * padding - k) / stride + 1);
                assert_eq!(out.len(), o.len());
                for f in 0..3 {
                    for image in 0..b {
                        for y in 0..o.h {
                            for x in 0..o.w {
                                let want = direct(&input, m, &l, image, f, y, x);
                                let got = out[((f * b + image) * o.h + y) * o.w + x];
                                assert!(
                                    (got - want).abs() < 1e-4,
                                    "k{k} s{stride} p{padding}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn layer(filters: usize, channels: usize, kernel: usize, stride: usize, seed: f32) -> Conv {
    let padding = if stride == 1 { kernel / 2 } else { 0 };
    Conv {
        filters,
        channels,
        kernel,
        stride,
        padding,
        weights: (0..filters * channels * kernel * kernel)
            .map(|i| (i as f32 * seed).sin() * 0.2)
            .collect(),
        bias: (0..filters)
            .map(|f| (f as f32 * seed).cos() * 0.1)
            .collect(),
    }
}

#[test]
fn a_batch_gives_each_image_its_own_descriptor() {
    // The real net's layer kinds at a small size: 24 px -> stem 9 -> pool 4 -> a block
    // -> a down block whose 1x1 convolution output meets a 2x2 pooled shortcut.
    let net = ResNet {
        mean: [120.0, 110.0, 100.0],
        side: 24,
        stem: layer(4, 3, 7, 2, 0.3),
        blocks: vec![
            Block {
                down: false,
                conv1: layer(4, 4, 3, 1, 0.7),
                conv2: layer(4, 4, 3, 1, 1.1),
            },
            Block {
                down: true,
                conv1: layer(6, 4, 3, 2, 1.3),
                conv2: layer(6, 6, 3, 1, 1.7),
            },
        ],
        fc: (0..6 * 5).map(|i| (i as f32 * 0.9).cos()).collect(),
        fc_in: 6,
        fc_out: 5,
    };
    let chip = |seed: u32| {
        image::RgbImage::from_fn(24, 24, |x, y| {
            let v = |c: u32| ((x * 7 + y * 13 + c * 31 + seed * 17) % 251) as u8;
            image::Rgb([v(0), v(1), v(2)])
        })
    };
    let (a, b, c) = (chip(1), chip(2), chip(3));
    let batch = net.forward_batch(&[&a, &b, &c]);
    let single: Vec<Vec<f32>> = [&a, &b, &c]
        .iter()
        .map(|x| net.forward_batch(&[x]).remove(0))
        .collect();
    assert_eq!(batch.len(), 3);
    assert_ne!(single[0], single[1], "different images must differ");
    for (got, want) in batch.iter().zip(&single) {
        assert_eq!(got.len(), 5);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
        }
    }
}

#[test]
fn pools() {
    let input: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let mut out = Vec::new();
    let m = Map {
        c: 1,
        b: 1,
        h: 4,
        w: 4,
    };
    assert_eq!(max_pool(&input, m, 3, 2, &mut out), Map { h: 1, w: 1, ..m });
    assert_eq!(out, vec![10.0]);
    assert_eq!(avg_pool(&input, m, 2, 2, &mut out), Map { h: 2, w: 2, ..m });
    assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5]);
}

#[test]
fn a_foreign_file_is_refused() {
    assert!(ResNet::parse(b"").is_err());
    let sp = [0x01, 0x01, 0x01, 0x02, b'x', b'y'];
    assert!(ResNet::parse(&sp).is_err());
}
