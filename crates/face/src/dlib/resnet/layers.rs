//! The network's layers as loaded: convolutions with their affine layer folded in.

/// A convolution with the following affine layer folded in.
pub(super) struct Conv {
    pub(super) filters: usize,
    pub(super) channels: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
    /// `(channels * kernel * kernel) x filters`, row-major: the GEMM reads it as the
    /// column-major `filters x K` matrix, so packing it reads memory in order (the file's
    /// filter-major order made that a strided gather, which dominated the top layers,
    /// where 256 filters meet 9 positions).
    pub(super) weights: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

/// Two 3x3 convolutions and a shortcut; `down` halves the size (stride 2, and the
/// shortcut is 2x2 average-pooled and zero-padded to the new channel count).
pub(super) struct Block {
    pub(super) down: bool,
    pub(super) conv1: Conv,
    pub(super) conv2: Conv,
}
