//! Reading `dlib_face_recognition_resnet_model_v1.dat`: its layer records, bottom up,
//! checked against the architecture and folded into [`super::layers`].

use std::collections::VecDeque;

use super::ResNet;
use super::layers::{Block, Conv};
use crate::dlib::reader::{ModelError, Reader};

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
        let mut records = VecDeque::new();
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
}
