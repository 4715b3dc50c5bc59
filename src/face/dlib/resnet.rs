//! dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, the
//! `anet_type` of dnn_face_recognition_ex.cpp): 29 convolutions in residual blocks,
//! 150x150 RGB chip in, 128 numbers out. Inference only, batch of one.
//!
//! Convolutions are im2col + SGEMM (`matrixmultiply`, with its own AVX/FMA and NEON
//! kernels); the affine (frozen batch-norm) layers are folded into the convolutions at
//! load time. Buffers live in a per-thread scratch space, so a steady-state embed does
//! not allocate.

use std::cell::RefCell;

use super::reader::{ModelError, Reader};

/// A convolution with the following affine layer folded in.
struct Conv {
    filters: usize,
    channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    /// `filters x (channels * kernel * kernel)`, row-major.
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
                weights: params[..n].to_vec(),
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
    let k = c.channels * c.kernel * c.kernel;
    for f in 0..c.filters {
        c.weights[f * k..(f + 1) * k]
            .iter_mut()
            .for_each(|w| *w *= gamma[f]);
        c.bias[f] = c.bias[f] * gamma[f] + beta[f];
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
        {
            return Err(structure("stem"));
        }
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
        let last = blocks.last().map_or(0, |b| b.conv2.filters);
        if inputs != last || records.pop_front().is_some() {
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

    /// The descriptor of a `side`x`side` RGB chip.
    pub(crate) fn forward(&self, chip: &image::RgbImage) -> Vec<f32> {
        SCRATCH.with(|s| self.forward_with(chip, &mut s.borrow_mut()))
    }

    fn forward_with(&self, chip: &image::RgbImage, s: &mut Scratch) -> Vec<f32> {
        let side = self.side;
        debug_assert_eq!(chip.dimensions(), (side as u32, side as u32));
        // HWC u8 -> CHW f32, (v - mean) / 256.
        s.x.clear();
        s.x.resize(3 * side * side, 0.0);
        for (i, p) in chip.pixels().enumerate().take(side * side) {
            for ch in 0..3 {
                s.x[ch * side * side + i] = (f32::from(p[ch]) - self.mean[ch]) / 256.0;
            }
        }
        let (mut c, mut h, mut w) = (3, side, side);
        // Stem: conv (+affine) -> relu -> 3x3/2 max pool.
        let (oh, ow) = conv(&s.x, c, h, w, &self.stem, &mut s.y, &mut s.cols);
        relu(&mut s.y);
        (c, h, w) = (self.stem.filters, oh, ow);
        let (ph, pw) = max_pool(&s.y, c, h, w, 3, 2, &mut s.x);
        (h, w) = (ph, pw);
        for b in &self.blocks {
            let (h1, w1) = conv(&s.x, c, h, w, &b.conv1, &mut s.y, &mut s.cols);
            relu(&mut s.y);
            let (h2, w2) = conv(
                &s.y,
                b.conv1.filters,
                h1,
                w1,
                &b.conv2,
                &mut s.z,
                &mut s.cols,
            );
            let f = b.conv2.filters;
            // The shortcut: the block's input, 2x2 average-pooled in a down block.
            let (sc, sh, sw) = if b.down {
                let (ph, pw) = avg_pool(&s.x, c, h, w, 2, 2, &mut s.y);
                std::mem::swap(&mut s.x, &mut s.y);
                (c, ph, pw)
            } else {
                (c, h, w)
            };
            // dlib's add_prev: the sum has the larger of each dimension, the smaller
            // operand zero-padded (a 3x3 strided convolution of an 8x8 map gives 3x3
            // while the pooled shortcut is 4x4).
            let (oc, oh, ow) = (sc.max(f), sh.max(h2), sw.max(w2));
            s.y.clear();
            s.y.resize(oc * oh * ow, 0.0);
            add_into(&mut s.y, (oc, oh, ow), &s.z, (f, h2, w2));
            add_into(&mut s.y, (oc, oh, ow), &s.x, (sc, sh, sw));
            relu(&mut s.y);
            std::mem::swap(&mut s.x, &mut s.y);
            (c, h, w) = (oc, oh, ow);
        }
        // Global average pool -> fc (no bias).
        let n = h * w;
        let pooled: Vec<f32> = (0..c)
            .map(|ch| s.x[ch * n..(ch + 1) * n].iter().sum::<f32>() / n as f32)
            .collect();
        let mut out = vec![0.0f32; self.fc_out];
        for (i, v) in pooled.iter().enumerate().take(self.fc_in) {
            let row = &self.fc[i * self.fc_out..(i + 1) * self.fc_out];
            out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
        }
        out
    }
}

/// Reused buffers: activations ping-pong between `x`, `y`, `z`; `cols` is im2col's.
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

/// `dst += src`, with `src` (CHW of the given size) placed at the origin of `dst`.
fn add_into(
    dst: &mut [f32],
    (_, dh, dw): (usize, usize, usize),
    src: &[f32],
    (sc, sh, sw): (usize, usize, usize),
) {
    for ch in 0..sc {
        for y in 0..sh {
            let d = &mut dst[(ch * dh + y) * dw..][..sw];
            let s = &src[(ch * sh + y) * sw..][..sw];
            d.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        }
    }
}

fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// Convolution of a CHW input; returns the output size.
fn conv(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    l: &Conv,
    out: &mut Vec<f32>,
    cols: &mut Vec<f32>,
) -> (usize, usize) {
    let (k, s, p) = (l.kernel, l.stride, l.padding);
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    let n = oh * ow;
    let kk = c * k * k;
    cols.clear();
    cols.resize(kk * n, 0.0);
    for ci in 0..c {
        let plane = &input[ci * h * w..(ci + 1) * h * w];
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ci * k + ky) * k + kx) * n..][..n];
                for oy in 0..oh {
                    let iy = (oy * s + ky) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    let dst = &mut row[oy * ow..(oy + 1) * ow];
                    for (ox, d) in dst.iter_mut().enumerate() {
                        let ix = (ox * s + kx) as isize - p as isize;
                        if ix >= 0 && ix < w as isize {
                            *d = src[ix as usize];
                        }
                    }
                }
            }
        }
    }
    out.clear();
    out.resize(l.filters * n, 0.0);
    for (f, b) in l.bias.iter().enumerate() {
        out[f * n..(f + 1) * n].iter_mut().for_each(|o| *o = *b);
    }
    sgemm(l.filters, kk, n, &l.weights, cols, out);
    (oh, ow)
}

/// `c += a · b` for row-major `a: m x k`, `b: k x n`, `c: m x n`.
fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold at least the m*k, k*n and m*n elements the strides reach
    // (checked above), and `c` does not alias `a` or `b` (distinct borrows).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Slides a `size`x`size` window by `stride` over each channel of a CHW input and reduces
/// each window (row by row) with `reduce`; returns the output size.
#[allow(clippy::too_many_arguments)]
fn pool(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
    reduce: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
) -> (usize, usize) {
    let oh = (h - size) / stride + 1;
    let ow = (w - size) / stride + 1;
    out.clear();
    out.resize(c * oh * ow, 0.0);
    for ch in 0..c {
        let plane = &input[ch * h * w..];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut window = (0..size).flat_map(|ky| {
                    (0..size).map(move |kx| plane[(oy * stride + ky) * w + ox * stride + kx])
                });
                out[(ch * oh + oy) * ow + ox] = reduce(&mut window);
            }
        }
    }
    (oh, ow)
}

fn max_pool(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    pool(input, c, h, w, size, stride, out, |v| {
        v.fold(f32::NEG_INFINITY, f32::max)
    })
}

fn avg_pool(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    size: usize,
    stride: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    let norm = 1.0 / (size * size) as f32;
    pool(input, c, h, w, size, stride, out, |v| {
        v.fold(0.0, |s, x| s + x) * norm
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_matches_a_direct_computation() {
        // 2 channels 4x4, 3 filters 3x3, stride 1, padding 1.
        let input: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
        let l = Conv {
            filters: 3,
            channels: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
            weights: (0..54).map(|i| (i as f32 * 0.11).cos()).collect(),
            bias: vec![0.5, -0.25, 0.0],
        };
        let (mut out, mut cols) = (Vec::new(), Vec::new());
        assert_eq!(conv(&input, 2, 4, 4, &l, &mut out, &mut cols), (4, 4));
        for f in 0..3 {
            for y in 0..4i32 {
                for x in 0..4i32 {
                    let mut want = l.bias[f];
                    for c in 0..2 {
                        for ky in 0..3i32 {
                            for kx in 0..3i32 {
                                let (iy, ix) = (y + ky - 1, x + kx - 1);
                                if (0..4).contains(&iy) && (0..4).contains(&ix) {
                                    want += input[c * 16 + (iy * 4 + ix) as usize]
                                        * l.weights
                                            [((f * 2 + c) * 3 + ky as usize) * 3 + kx as usize];
                                }
                            }
                        }
                    }
                    let got = out[f * 16 + (y * 4 + x) as usize];
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn pools() {
        let input: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mut out = Vec::new();
        assert_eq!(max_pool(&input, 1, 4, 4, 3, 2, &mut out), (1, 1));
        assert_eq!(out, vec![10.0]);
        assert_eq!(avg_pool(&input, 1, 4, 4, 2, 2, &mut out), (2, 2));
        assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        assert!(ResNet::parse(b"").is_err());
        let sp = [0x01, 0x01, 0x01, 0x02, b'x', b'y'];
        assert!(ResNet::parse(&sp).is_err());
    }
}
