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

mod layers;
mod ops;
mod parse;
#[cfg(test)]
mod tests;

use layers::{Block, Conv};
use ops::{Map, SCRATCH, Scratch, add_into, avg_pool, conv, max_pool, relu};

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

impl ResNet {
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
