//! dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, the
//! `anet_type` of dnn_face_recognition_ex.cpp): 29 convolutions in residual blocks,
//! 150x150 RGB chip in, 128 numbers out. Inference only, a few chips at a time (a probe
//! and its mirror image share each layer's GEMM).
//!
//! Convolutions are SGEMMs (`matrixmultiply`, with its own AVX/FMA and NEON kernels): on
//! the large maps over shifted views of the padded input, elsewhere over an im2col
//! matrix built in cache-sized bands. The affine (frozen batch-norm) layers are folded
//! into the convolutions at load time. Buffers live in a per-thread scratch space, so a
//! steady-state embed does not allocate.

use std::cell::RefCell;

use super::reader::{ModelError, Reader};

/// A convolution with the following affine layer folded in.
struct Conv {
    filters: usize,
    channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    /// `(channels * kernel * kernel) x filters`, row-major: the GEMM reads it as the
    /// column-major `filters x K` matrix, so packing it reads memory in order (the file's
    /// filter-major order made that a strided gather, which dominated the top layers,
    /// where 256 filters meet 9 positions).
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Two 3x3 convolutions and a shortcut; `down` halves the size (stride 2, and the
/// shortcut is 2x2 average-pooled and zero-padded to the new channel count).
struct Block {
    down: bool,
    conv1: Conv,
    conv2: Conv,
}

pub(crate) struct ResNet {
    /// Mean RGB subtracted before dividing by 256 (dlib's `input_rgb_image_sized`).
    mean: [f32; 3],
    side: usize,
    stem: Conv,
    blocks: Vec<Block>,
    /// `inputs x outputs`, row-major.
    fc: Vec<f32>,
    fc_in: usize,
    fc_out: usize,
}

/// Layer records as they appear in the file, bottom (input) to top.
enum Record {
    Conv(Conv),
    Affine {
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    Relu,
    MaxPool {
        size: usize,
        stride: usize,
    },
    AvgPool {
        size: usize,
        stride: usize,
    },
    AddPrev,
    Fc {
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
    },
}

fn read_record(r: &mut Reader<'_>, name: &str) -> Result<Record, ModelError> {
    let rec = match name {
        "con_4" => {
            let (_, params) = r.tensor("con params")?;
            let filters = r.len("num_filters")?;
            let (kh, kw) = (r.len("nr")?, r.len("nc")?);
            let (sy, sx) = (r.len("stride_y")?, r.len("stride_x")?);
            let (py, px) = (r.len("padding_y")?, r.len("padding_x")?);
            let fdims = r.alias_tensor("filters")?;
            let _ = r.alias_tensor("biases")?;
            for what in ["lr", "wd", "bias lr", "bias wd"] {
                r.float(what)?;
            }
            let channels = fdims[1];
            let n = filters * channels * kh * kw;
            if kh != kw
                || sy != sx
                || py != px
                || fdims != [filters, channels, kh, kw]
                || params.len() != n + filters
            {
                return Err(r.malformed(
                    "con_4",
                    format!("unsupported shape {fdims:?} stride {sy}x{sx}"),
                ));
            }
            Record::Conv(Conv {
                filters,
                channels,
                kernel: kh,
                stride: sy,
                padding: py,
                weights: (0..n)
                    .map(|i| params[(i % filters) * (n / filters) + i / filters])
                    .collect(),
                bias: params[n..].to_vec(),
            })
        }
        "affine_" => {
            let (_, params) = r.tensor("affine params")?;
            let g = r.alias_tensor("gamma")?;
            let _ = r.alias_tensor("beta")?;
            let _mode = r.int("affine mode")?;
            let c = g.iter().product::<usize>();
            if params.len() != 2 * c {
                return Err(r.malformed("affine_", "params are not gamma and beta"));
            }
            Record::Affine {
                gamma: params[..c].to_vec(),
                beta: params[c..].to_vec(),
            }
        }
        "relu_" => Record::Relu,
        "add_prev_" => Record::AddPrev,
        "max_pool_2" | "avg_pool_2" => {
            let (nr, nc) = (r.len("nr")?, r.len("nc")?);
            let (sy, sx) = (r.len("stride_y")?, r.len("stride_x")?);
            let (py, px) = (r.len("padding_y")?, r.len("padding_x")?);
            if nr != nc || sy != sx || py != 0 || px != 0 {
                return Err(r.malformed(name, "unsupported pooling"));
            }
            if name == "max_pool_2" {
                Record::MaxPool {
                    size: nr,
                    stride: sy,
                }
            } else {
                Record::AvgPool {
                    size: nr,
                    stride: sy,
                }
            }
        }
        "fc_2" => {
            let outputs = r.len("num_outputs")?;
            let inputs = r.len("num_inputs")?;
            let (_, params) = r.tensor("fc params")?;
            let _ = r.alias_tensor("weights")?;
            let _ = r.alias_tensor("biases")?;
            let bias_mode = r.int("bias mode")?;
            for what in ["lr", "wd", "bias lr", "bias wd"] {
                r.float(what)?;
            }
            if bias_mode != 1 || params.len() != inputs * outputs {
                return Err(r.malformed("fc_2", "expected fc_no_bias"));
            }
            Record::Fc {
                inputs,
                outputs,
                weights: params,
            }
        }
        other => return Err(r.malformed("layer", format!("unexpected layer {other:?}"))),
    };
    // add_layer's own state: three flags and three (empty) tensors.
    for what in ["setup flag", "stale flag", "disabled flag"] {
        r.boolean(what)?;
    }
    for what in ["x_grad", "cached_output", "params_grad"] {
        r.tensor(what)?;
    }
    Ok(rec)
}

fn fold(conv: Record, affine: Record, at: &str) -> Result<Conv, ModelError> {
    let (Record::Conv(mut c), Record::Affine { gamma, beta }) = (conv, affine) else {
        return Err(ModelError::Malformed {
            what: at.into(),
            at: 0,
            why: "expected a convolution followed by an affine layer".into(),
        });
    };
    if gamma.len() != c.filters {
        return Err(ModelError::Malformed {
            what: at.into(),
            at: 0,
            why: "affine size differs from the convolution's".into(),
        });
    }
    for ((b, g), beta) in c.bias.iter_mut().zip(&gamma).zip(&beta) {
        *b = *b * g + beta;
    }
    for row in c.weights.chunks_exact_mut(c.filters) {
        row.iter_mut().zip(&gamma).for_each(|(w, g)| *w *= g);
    }
    Ok(c)
}

fn structure(what: &str) -> ModelError {
    ModelError::Malformed {
        what: what.into(),
        at: 0,
        why: "layers are not the ResNet of dnn_face_recognition_ex.cpp".into(),
    }
}

impl ResNet {
    /// Parses `dlib_face_recognition_resnet_model_v1.dat` and checks its architecture.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ResNet, ModelError> {
        let mut r = Reader::new(bytes);
        if r.int("loss layer version")? != 1 {
            return Err(r.malformed("loss layer", "version"));
        }
        r.expect_string("loss_metric_2")?;
        r.float("margin")?;
        r.float("distance threshold")?;
        // Versions of the nested layers, top down, until the input layer's (3).
        loop {
            match r.int("layer version")? {
                3 => break,
                1 | 2 => continue,
                v => return Err(r.malformed("layer version", format!("{v}"))),
            }
        }
        r.expect_string("input_rgb_image_sized")?;
        let mean = [
            r.float32("avg red")?,
            r.float32("avg green")?,
            r.float32("avg blue")?,
        ];
        let (nr, nc) = (r.len("input rows")?, r.len("input cols")?);
        if nr != nc || nr == 0 {
            return Err(r.malformed("input", format!("{nr}x{nc}")));
        }
        let mut records = std::collections::VecDeque::new();
        while !r.at_end() {
            let name = r.string("layer name")?;
            records.push_back(read_record(&mut r, &name)?);
            if records.len() == 1 {
                // The layer on the input also stores the input's sample expansion factor.
                r.int("sample expansion factor")?;
            }
        }
        let mut next = || records.pop_front().ok_or_else(|| structure("end of file"));
        let stem = fold(next()?, next()?, "stem")?;
        if !matches!(next()?, Record::Relu)
            || !matches!(next()?, Record::MaxPool { size: 3, stride: 2 })
            || stem.channels != 3
        {
            return Err(structure("stem"));
        }
        let mut channels = stem.filters;
        let mut blocks = Vec::new();
        loop {
            let first = next()?;
            if let Record::AvgPool { size: 0, .. } = first {
                break;
            }
            let conv1 = fold(first, next()?, "block")?;
            if !matches!(next()?, Record::Relu) {
                return Err(structure("block"));
            }
            let conv2 = fold(next()?, next()?, "block")?;
            let down = match next()? {
                Record::AddPrev => false,
                Record::AvgPool { size: 2, stride: 2 } => {
                    if !matches!(next()?, Record::AddPrev) {
                        return Err(structure("down block"));
                    }
                    true
                }
                _ => return Err(structure("block")),
            };
            if !matches!(next()?, Record::Relu) || (conv1.stride == 2) != down {
                return Err(structure("block"));
            }
            // Each convolution reads what the layer below makes (the GEMMs' sizes
            // come from these); the shortcut sum has the larger channel count.
            if conv1.channels != channels || conv2.channels != conv1.filters {
                return Err(structure("block channels"));
            }
            channels = channels.max(conv2.filters);
            blocks.push(Block { down, conv1, conv2 });
        }
        let Record::Fc {
            inputs,
            outputs,
            weights,
        } = next()?
        else {
            return Err(structure("fc"));
        };
        if inputs != channels || records.pop_front().is_some() {
            return Err(structure("fc"));
        }
        Ok(ResNet {
            mean,
            side: nr,
            stem,
            blocks,
            fc: weights,
            fc_in: inputs,
            fc_out: outputs,
        })
    }

    pub(crate) fn input_side(&self) -> usize {
        self.side
    }

    pub(crate) fn output_dim(&self) -> usize {
        self.fc_out
    }

    /// The descriptors of `side`x`side` RGB chips, computed together.
    ///
    /// One GEMM per layer serves the whole batch: the weights are packed once, and the
    /// top layers' small maps (9 positions at 3x3) fill more of the kernel's tiles.
    /// Activations are laid out channel, then image, then row (`C x B x H x W`), so a
    /// GEMM's output is the next layer's input as is, and everything but the convolution
    /// treats the `C * B` planes alike.
    pub(crate) fn forward_batch(&self, chips: &[&image::RgbImage]) -> Vec<Vec<f32>> {
        SCRATCH.with(|s| self.forward_with(chips, &mut s.borrow_mut()))
    }

    fn forward_with(&self, chips: &[&image::RgbImage], s: &mut Scratch) -> Vec<Vec<f32>> {
        let (side, batch) = (self.side, chips.len());
        let area = side * side;
        // HWC u8 -> CBHW f32, (v - mean) / 256.
        s.x.clear();
        s.x.resize(3 * batch * area, 0.0);
        for (b, chip) in chips.iter().enumerate() {
            debug_assert_eq!(chip.dimensions(), (side as u32, side as u32));
            for (i, p) in chip.pixels().enumerate().take(area) {
                for ch in 0..3 {
                    s.x[(ch * batch + b) * area + i] = (f32::from(p[ch]) - self.mean[ch]) / 256.0;
                }
            }
        }
        let mut m = Map {
            c: 3,
            b: batch,
            h: side,
            w: side,
        };
        // Stem: conv (+affine) -> relu -> 3x3/2 max pool.
        m = conv(&s.x, m, &self.stem, &mut s.y, &mut s.cols);
        relu(&mut s.y);
        m = max_pool(&s.y, m, 3, 2, &mut s.x);
        for blk in &self.blocks {
            let m1 = conv(&s.x, m, &blk.conv1, &mut s.y, &mut s.cols);
            relu(&mut s.y);
            let m2 = conv(&s.y, m1, &blk.conv2, &mut s.z, &mut s.cols);
            // The shortcut: the block's input, 2x2 average-pooled in a down block.
            let shortcut = if blk.down {
                let p = avg_pool(&s.x, m, 2, 2, &mut s.y);
                std::mem::swap(&mut s.x, &mut s.y);
                p
            } else {
                m
            };
            // dlib's add_prev: the sum has the larger of each dimension, the smaller
            // operand zero-padded (a 3x3 strided convolution of an 8x8 map gives 3x3
            // while the pooled shortcut is 4x4).
            let sum = Map {
                c: shortcut.c.max(m2.c),
                b: batch,
                h: shortcut.h.max(m2.h),
                w: shortcut.w.max(m2.w),
            };
            s.y.clear();
            s.y.resize(sum.len(), 0.0);
            add_into(&mut s.y, sum, &s.z, m2);
            add_into(&mut s.y, sum, &s.x, shortcut);
            relu(&mut s.y);
            std::mem::swap(&mut s.x, &mut s.y);
            m = sum;
        }
        // Global average pool -> fc (no bias).
        let n = m.h * m.w;
        (0..batch)
            .map(|b| {
                let mut out = vec![0.0f32; self.fc_out];
                for ch in 0..m.c.min(self.fc_in) {
                    let plane = &s.x[(ch * batch + b) * n..][..n];
                    let v = plane.iter().sum::<f32>() / n as f32;
                    let row = &self.fc[ch * self.fc_out..(ch + 1) * self.fc_out];
                    out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
                }
                out
            })
            .collect()
    }
}

/// The shape of a batch of activations: `c` channels of `b` images of `h x w`, stored
/// `C x B x H x W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Map {
    c: usize,
    b: usize,
    h: usize,
    w: usize,
}

impl Map {
    fn planes(&self) -> usize {
        self.c * self.b
    }

    fn len(&self) -> usize {
        self.planes() * self.h * self.w
    }
}

/// Reused buffers: activations ping-pong between `x`, `y`, `z`; `cols` is the
/// convolutions' own (im2col's band, or the shifted GEMMs' padded input and sums).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    cols: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `dst += src`, each of `src`'s planes placed at the origin of `dst`'s plane of the same
/// channel and image (both have the same batch, so that is the plane of the same index).
fn add_into(dst: &mut [f32], d: Map, src: &[f32], s: Map) {
    for p in 0..s.planes() {
        for y in 0..s.h {
            let dr = &mut dst[(p * d.h + y) * d.w..][..s.w];
            let sr = &src[(p * s.h + y) * s.w..][..s.w];
            dr.iter_mut().zip(sr).for_each(|(a, b)| *a += b);
        }
    }
}

fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// How many floats of im2col's matrix one GEMM takes at a time: 512 KB, so the band
/// written by im2col is still in L2 when the GEMM packs it (the whole matrix of the first
/// layers is 6 MB; a Cortex-A72 has 1 MB of L2, this x86 core 2 MB).
const BAND: usize = 128 * 1024;

/// Convolution of a batch; returns the output's shape.
fn conv(input: &[f32], m: Map, l: &Conv, out: &mut Vec<f32>, cols: &mut Vec<f32>) -> Map {
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
fn conv_shifted(input: &[f32], m: Map, l: &Conv, out: &mut Vec<f32>, buf: &mut Vec<f32>) -> Map {
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
fn conv_im2col(input: &[f32], m: Map, l: &Conv, out: &mut Vec<f32>, cols: &mut Vec<f32>) -> Map {
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
fn im2col(input: &[f32], m: Map, l: &Conv, o: Map, g: std::ops::Range<usize>, cols: &mut Vec<f32>) {
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
fn pool(
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

fn max_pool(input: &[f32], m: Map, size: usize, stride: usize, out: &mut Vec<f32>) -> Map {
    pool(input, m, size, stride, out, |v| {
        v.fold(f32::NEG_INFINITY, f32::max)
    })
}

fn avg_pool(input: &[f32], m: Map, size: usize, stride: usize, out: &mut Vec<f32>) -> Map {
    let norm = 1.0 / (size * size) as f32;
    pool(input, m, size, stride, out, |v| {
        v.fold(0.0, |s, x| s + x) * norm
    })
}

#[cfg(test)]
mod tests {
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
}
