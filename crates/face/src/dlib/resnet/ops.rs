//! The forward pass's operations on batches of activations: convolutions as GEMMs,
//! pooling, the residual sum, and the reused buffers.

use std::cell::RefCell;

use super::layers::Conv;

/// The shape of a batch of activations: `c` channels of `b` images of `h x w`, stored
/// `C x B x H x W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Map {
    pub(super) c: usize,
    pub(super) b: usize,
    pub(super) h: usize,
    pub(super) w: usize,
}

impl Map {
    pub(super) fn planes(&self) -> usize {
        self.c * self.b
    }

    pub(super) fn len(&self) -> usize {
        self.planes() * self.h * self.w
    }
}

/// Reused buffers: activations ping-pong between `x`, `y`, `z`; `cols` is the
/// convolutions' own (im2col's band, or the shifted GEMMs' padded input and sums).
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) x: Vec<f32>,
    pub(super) y: Vec<f32>,
    pub(super) z: Vec<f32>,
    pub(super) cols: Vec<f32>,
}

thread_local! {
    pub(super) static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `dst += src`, each of `src`'s planes placed at the origin of `dst`'s plane of the same
/// channel and image (both have the same batch, so that is the plane of the same index).
pub(super) fn add_into(dst: &mut [f32], d: Map, src: &[f32], s: Map) {
    for p in 0..s.planes() {
        for y in 0..s.h {
            let dr = &mut dst[(p * d.h + y) * d.w..][..s.w];
            let sr = &src[(p * s.h + y) * s.w..][..s.w];
            dr.iter_mut().zip(sr).for_each(|(a, b)| *a += b);
        }
    }
}

pub(super) fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// How many floats of im2col's matrix one GEMM takes at a time: 512 KB, so the band
/// written by im2col is still in L2 when the GEMM packs it (the whole matrix of the first
/// layers is 6 MB; a Cortex-A72 has 1 MB of L2, this x86 core 2 MB).
pub(super) const BAND: usize = 128 * 1024;

/// Convolution of a batch; returns the output's shape.
pub(super) fn conv(
    input: &[f32],
    m: Map,
    l: &Conv,
    out: &mut Vec<f32>,
    cols: &mut Vec<f32>,
) -> Map {
    // Shifting computes the padded border's outputs too: 12 % more work on a 35x35 map,
    // 56 % on 8x8 (still faster than im2col there, measured), 180 % on 3x3 (slower).
    if l.stride == 1 && l.padding * 2 + 1 == l.kernel && m.h.min(m.w) >= 8 {
        conv_shifted(input, m, l, out, cols)
    } else {
        conv_im2col(input, m, l, out, cols)
    }
}

/// A "same" convolution (stride 1, padding kernel / 2) as `kernel²` GEMMs over shifted
/// views of the zero-padded input, no im2col. On a map padded to `Hp x Wp` and read as
/// one long row per channel, the input of output `j` under kernel tap `(ky, kx)` is at
/// `j + ky * Wp + kx`: each tap's operand is a plain strided matrix the GEMM can pack
/// itself. Outputs are computed on the padded grid (the border's are dropped), so this
/// pays off where im2col's copies cost most and the border is thin: the large maps.
pub(super) fn conv_shifted(
    input: &[f32],
    m: Map,
    l: &Conv,
    out: &mut Vec<f32>,
    buf: &mut Vec<f32>,
) -> Map {
    let (k, p, f) = (l.kernel, l.padding, l.filters);
    let (hp, wp) = (m.h + 2 * p, m.w + 2 * p);
    let plane = hp * wp;
    let span = m.b * plane;
    buf.clear();
    buf.resize(m.c * span + f * span, 0.0);
    let (padded, acc) = buf.split_at_mut(m.c * span);
    for (dst, src) in padded
        .chunks_exact_mut(plane)
        .zip(input.chunks_exact(m.h * m.w))
    {
        for (d, s) in dst[p * wp + p..].chunks_mut(wp).zip(src.chunks_exact(m.w)) {
            d[..m.w].copy_from_slice(s);
        }
    }
    // The last output read stays inside the padded maps.
    let n = span - ((k - 1) * wp + (k - 1));
    for ky in 0..k {
        for kx in 0..k {
            let tap = ky * k + kx;
            // SAFETY: A is the filters x channels slice of the weights for this tap
            // (element (f, c) at ((c * k² + tap) * filters + f), the largest index
            // ((channels - 1) * k² + tap) * filters + filters - 1 < weights.len()); B
            // reads padded[c * span + j + ky * wp + kx] for j < n, the largest index
            // below m.c * span by the choice of n; C writes acc[f * span + j], j < n.
            // The three do not overlap (split_at_mut and a distinct borrow).
            assert!(l.weights.len() == m.c * k * k * f && n <= span);
            unsafe {
                matrixmultiply::sgemm(
                    f,
                    m.c,
                    n,
                    1.0,
                    l.weights.as_ptr().add(tap * f),
                    1,
                    (k * k * f) as isize,
                    padded.as_ptr().add(ky * wp + kx),
                    span as isize,
                    1,
                    if tap == 0 { 0.0 } else { 1.0 },
                    acc.as_mut_ptr(),
                    span as isize,
                    1,
                );
            }
        }
    }
    let o = Map {
        c: f,
        b: m.b,
        h: m.h,
        w: m.w,
    };
    out.clear();
    out.resize(o.len(), 0.0);
    for ((dst, src), bias) in out
        .chunks_exact_mut(m.h * m.w)
        .zip(acc.chunks_exact(plane))
        .zip(l.bias.iter().flat_map(|b| std::iter::repeat_n(b, m.b)))
    {
        for (d, s) in dst.chunks_exact_mut(m.w).zip(src.chunks(wp)) {
            d.iter_mut().zip(s).for_each(|(d, s)| *d = s + bias);
        }
    }
    o
}

/// im2col and one GEMM per band of output rows.
pub(super) fn conv_im2col(
    input: &[f32],
    m: Map,
    l: &Conv,
    out: &mut Vec<f32>,
    cols: &mut Vec<f32>,
) -> Map {
    let (k, s, p) = (l.kernel, l.stride, l.padding);
    let o = Map {
        c: l.filters,
        b: m.b,
        h: (m.h + 2 * p - k) / s + 1,
        w: (m.w + 2 * p - k) / s + 1,
    };
    // One im2col row per (channel, ky, kx); one column per output position, in (image,
    // oy, ox) order, so output row `g = image * oh + oy` owns columns `g * ow..`.
    let rows = m.c * k * k;
    let width = o.b * o.h * o.w;
    out.clear();
    out.resize(l.filters * width, 0.0);
    for (f, b) in l.bias.iter().enumerate() {
        out[f * width..(f + 1) * width]
            .iter_mut()
            .for_each(|v| *v = *b);
    }
    let band = (BAND / (rows * o.w)).max(1);
    for g0 in (0..o.b * o.h).step_by(band) {
        let g1 = (g0 + band).min(o.b * o.h);
        let cw = (g1 - g0) * o.w;
        im2col(input, m, l, o, g0..g1, cols);
        // SAFETY: `weights` is filters x rows column-major, `cols` rows x cw and `out`
        // filters x width row-major, and the band's columns start at g0 * ow < width with cw columns left
        // (asserted); `out` does not alias the others (distinct borrows).
        assert!(l.weights.len() >= l.filters * rows && cols.len() >= rows * cw);
        assert!(out.len() >= (l.filters - 1) * width + g0 * o.w + cw);
        unsafe {
            matrixmultiply::sgemm(
                l.filters,
                rows,
                cw,
                1.0,
                l.weights.as_ptr(),
                1,
                l.filters as isize,
                cols.as_ptr(),
                cw as isize,
                1,
                1.0,
                out.as_mut_ptr().add(g0 * o.w),
                width as isize,
                1,
            );
        }
    }
    o
}

/// im2col of output rows `g` (`image * oh + oy`) of a convolution `m` -> `o`: `cols`
/// becomes `rows x (g.len() * ow)`, every element written (padding as zeros).
pub(super) fn im2col(
    input: &[f32],
    m: Map,
    l: &Conv,
    o: Map,
    g: std::ops::Range<usize>,
    cols: &mut Vec<f32>,
) {
    let (k, s, p) = (l.kernel, l.stride, l.padding);
    let cw = g.len() * o.w;
    cols.resize(m.c * k * k * cw, 0.0);
    for ci in 0..m.c {
        for kx in 0..k {
            // The output columns whose input column ox * s + kx - p lies inside the
            // map; the others read padding.
            let lo = p.saturating_sub(kx).div_ceil(s).min(o.w);
            let hi = o.w.min((m.w + p).saturating_sub(kx).div_ceil(s)).max(lo);
            for ky in 0..k {
                let row = &mut cols[((ci * k + ky) * k + kx) * cw..][..cw];
                for (gi, dst) in g.clone().zip(row.chunks_exact_mut(o.w)) {
                    let (b, oy) = (gi / o.h, gi % o.h);
                    let Some(iy) = (oy * s + ky).checked_sub(p).filter(|&y| y < m.h) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let plane = (ci * m.b + b) * m.h * m.w;
                    let src = &input[plane + iy * m.w..][..m.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if lo < hi {
                        let first = lo * s + kx - p;
                        if s == 1 {
                            dst[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                        } else {
                            for (d, v) in dst[lo..hi].iter_mut().zip(src[first..].iter().step_by(s))
                            {
                                *d = *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Slides a `size`x`size` window by `stride` over each plane and reduces each window
/// (row by row) with `reduce`; returns the output's shape.
pub(super) fn pool(
    input: &[f32],
    m: Map,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
    reduce: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
) -> Map {
    let oh = (m.h - size) / stride + 1;
    let ow = (m.w - size) / stride + 1;
    out.clear();
    out.resize(m.planes() * oh * ow, 0.0);
    for pl in 0..m.planes() {
        let plane = &input[pl * m.h * m.w..];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut window = (0..size).flat_map(|ky| {
                    (0..size).map(move |kx| plane[(oy * stride + ky) * m.w + ox * stride + kx])
                });
                out[(pl * oh + oy) * ow + ox] = reduce(&mut window);
            }
        }
    }
    Map { h: oh, w: ow, ..m }
}

pub(super) fn max_pool(
    input: &[f32],
    m: Map,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
) -> Map {
    pool(input, m, size, stride, out, |v| {
        v.fold(f32::NEG_INFINITY, f32::max)
    })
}

pub(super) fn avg_pool(
    input: &[f32],
    m: Map,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
) -> Map {
    let norm = 1.0 / (size * size) as f32;
    pool(input, m, size, stride, out, |v| {
        v.fold(0.0, |s, x| s + x) * norm
    })
}
