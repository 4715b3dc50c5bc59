//! `eval --pairs`: the verification table papers print, LFW's View 2 protocol. A pairs
//! file (`pairs.txt`) holds a header `FOLDS N`, then per fold N matched pairs (`Name
//! 1 4`) and N mismatched ones (`Name 1 Other 2`); image k of Name is
//! `Name/Name_000k.jpg` under the dataset. Each fold is scored with the distance
//! threshold that is most accurate on the other folds; the mean accuracy is the
//! figure dlib's 99.38 % is.
//!
//! A pair one of whose photos yields no face is an error, counted in its fold's
//! accuracy and reported (`failed`). With the gates (the terminal's own check of a
//! face) LFW's press photos lose some faces; `gates: false` embeds the largest face
//! found even when the gates refuse it, and a centred box when none is found, as papers
//! do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use attendance_face::{Embedding, FacePipeline};
use serde::Serialize;

use crate::dataset::EvalError;

/// One pair of the file: two images and whether they show one person.
#[derive(Debug, Clone, PartialEq)]
struct Pair {
    fold: usize,
    a: PathBuf,
    b: PathBuf,
    same: bool,
}

/// The 10-fold figures (or as many folds as the file has).
#[derive(Debug, Clone, Serialize)]
pub struct PairsReport {
    pub embedder: String,
    pub gates: bool,
    pub folds: usize,
    pub pairs: usize,
    /// Pairs with a photo that gave no face (errors in every fold they are in).
    pub failed: usize,
    /// Mean and standard deviation of the folds' accuracies.
    pub accuracy: f64,
    pub accuracy_std: f64,
    pub fold_accuracy: Vec<f64>,
    /// The threshold each fold was scored with (chosen on the other folds).
    pub fold_threshold: Vec<f32>,
}

/// Reads a View 2 pairs file; images are looked for under `dataset`.
fn read_pairs(text: &str, dataset: &Path) -> Result<(usize, Vec<Pair>), String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty pairs file")?;
    let numbers: Vec<usize> = header
        .split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|_| format!("line 1: {header:?} is not `FOLDS N`"))
        })
        .collect::<Result<_, _>>()?;
    let [folds, n] = numbers[..] else {
        return Err(format!("line 1: {header:?} is not `FOLDS N`"));
    };
    let image = |name: &str, k: &str, at: usize| -> Result<PathBuf, String> {
        let k: u32 = k
            .parse()
            .map_err(|_| format!("line {at}: {k:?} is not an image number"))?;
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("line {at}: {name:?} is not a name"));
        }
        Ok(dataset.join(name).join(format!("{name}_{k:04}.jpg")))
    };
    let mut pairs = Vec::with_capacity(folds * n * 2);
    for fold in 0..folds {
        for same in [true, false] {
            for _ in 0..n {
                let (i, line) = lines.next().ok_or(format!(
                    "fold {}: fewer than {n} pairs of each kind",
                    fold + 1
                ))?;
                let f: Vec<&str> = line.split_whitespace().collect();
                let (a, b) = match (same, &f[..]) {
                    (true, [name, x, y]) => (image(name, x, i + 1)?, image(name, y, i + 1)?),
                    (false, [p, x, q, y]) => (image(p, x, i + 1)?, image(q, y, i + 1)?),
                    _ => {
                        let want = if same { "Name k l" } else { "Name k Other l" };
                        return Err(format!("line {}: {line:?} is not `{want}`", i + 1));
                    }
                };
                pairs.push(Pair { fold, a, b, same });
            }
        }
    }
    match lines.next() {
        Some((i, _)) => Err(format!("line {}: more pairs than the header says", i + 1)),
        None => Ok((folds, pairs)),
    }
}

/// The threshold most accurate on `train` (pair distance, same person): accept at or
/// under it. The midpoint between two neighbouring distances, so a tie goes neither way.
fn best_threshold(train: &mut [(f32, bool)]) -> f32 {
    train.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Accept nothing: every mismatched pair right.
    let mut right = train.iter().filter(|p| !p.1).count() as i64;
    let (mut best, mut at) = (right, 0.0f32);
    for (i, &(d, same)) in train.iter().enumerate() {
        right += if same { 1 } else { -1 };
        let next = train.get(i + 1).map_or(d + 1.0, |p| p.0);
        if right > best && next > d {
            (best, at) = (right, (d + next) / 2.0);
        }
    }
    at
}

/// Scores the pairs: per fold, the threshold from the other folds.
fn score(folds: usize, pairs: &[Pair], distance: &[Option<f32>]) -> (Vec<f64>, Vec<f32>) {
    (0..folds)
        .map(|k| {
            let mut train: Vec<(f32, bool)> = pairs
                .iter()
                .zip(distance)
                .filter(|(p, _)| p.fold != k)
                .filter_map(|(p, d)| Some(((*d)?, p.same)))
                .collect();
            let t = best_threshold(&mut train);
            let test: Vec<(&Pair, &Option<f32>)> = pairs
                .iter()
                .zip(distance)
                .filter(|(p, _)| p.fold == k)
                .collect();
            let right = test
                .iter()
                .filter(|(p, d)| d.is_some_and(|d| (d <= t) == p.same))
                .count();
            (crate::score::rate(right, test.len()), t)
        })
        .unzip()
}

/// Runs the pairs file `file` over `dataset`.
pub fn evaluate_pairs(
    pipeline: &FacePipeline,
    dataset: &Path,
    file: &Path,
    gates: bool,
) -> Result<PairsReport, EvalError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| EvalError::Pairs(file.into(), e.to_string()))?;
    let (folds, pairs) =
        read_pairs(&text, dataset).map_err(|e| EvalError::Pairs(file.into(), e))?;
    let mut embedded: HashMap<PathBuf, Option<Embedding>> = HashMap::new();
    let mut embed = |path: &PathBuf| -> Option<Embedding> {
        let e = embedded.entry(path.clone()).or_insert_with(|| {
            let crop = if gates {
                crate::accept(pipeline, path).ok()?.crop
            } else {
                let bytes = std::fs::read(path).ok()?;
                pipeline.face_without_gates(&pipeline.decode(&bytes).ok()?)
            };
            Some(pipeline.embedder().embed(&crop))
        });
        e.clone()
    };
    let distance: Vec<Option<f32>> = pairs
        .iter()
        .map(|p| Some(embed(&p.a)?.distance(&embed(&p.b)?)))
        .collect();
    let (fold_accuracy, fold_threshold) = score(folds, &pairs, &distance);
    let n = fold_accuracy.len().max(1) as f64;
    let accuracy = fold_accuracy.iter().sum::<f64>() / n;
    let var = fold_accuracy
        .iter()
        .map(|a| (a - accuracy).powi(2))
        .sum::<f64>()
        / n;
    Ok(PairsReport {
        embedder: pipeline.embedder().name().to_owned(),
        gates,
        folds,
        pairs: pairs.len(),
        failed: distance.iter().filter(|d| d.is_none()).count(),
        accuracy,
        accuracy_std: var.sqrt(),
        fold_accuracy,
        fold_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_2_file_is_read_fold_by_fold() {
        let text = "2 1\nAl 1 2\nAl 1 Bo 3\nBo 1 3\nCy 2 Al 1\n";
        let (folds, pairs) = read_pairs(text, Path::new("/d")).unwrap();
        assert_eq!(folds, 2);
        let got: Vec<(usize, &str, &str, bool)> = pairs
            .iter()
            .map(|p| (p.fold, p.a.to_str().unwrap(), p.b.to_str().unwrap(), p.same))
            .collect();
        assert_eq!(
            got,
            [
                (0, "/d/Al/Al_0001.jpg", "/d/Al/Al_0002.jpg", true),
                (0, "/d/Al/Al_0001.jpg", "/d/Bo/Bo_0003.jpg", false),
                (1, "/d/Bo/Bo_0001.jpg", "/d/Bo/Bo_0003.jpg", true),
                (1, "/d/Cy/Cy_0002.jpg", "/d/Al/Al_0001.jpg", false),
            ]
        );
        for bad in [
            "",
            "2\n",
            "1 1\nAl 1\nAl 1 Bo 2\n",
            "1 1\nAl 1 2\n",
            "1 1\nAl 1 x\nAl 1 Bo 2\n",
            "1 1\n../x 1 2\nAl 1 Bo 2\n",
            "1 1\nAl 1 2\nAl 1 Bo 2\nAl 1 3\n",
        ] {
            assert!(read_pairs(bad, Path::new("/d")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_fold_is_scored_with_the_other_folds_threshold() {
        let pair = |fold, same| Pair {
            fold,
            a: PathBuf::new(),
            b: PathBuf::new(),
            same,
        };
        // Fold 0 separates at 0.5, fold 1 at 0.8; one pair of fold 1 failed.
        let pairs = [
            pair(0, true),
            pair(0, false),
            pair(1, true),
            pair(1, false),
            pair(1, true),
        ];
        let d = [Some(0.4), Some(0.6), Some(0.7), Some(0.9), None];
        let (acc, t) = score(2, &pairs, &d);
        // Fold 0 with fold 1's threshold (0.8): its mismatched pair at 0.6 accepted, 1
        // of 2. Fold 1 with fold 0's (0.5): the 0.7 pair refused, the failed pair an
        // error: 1 of 3.
        assert!(
            (t[0] - 0.8).abs() < 1e-6 && (t[1] - 0.5).abs() < 1e-6,
            "{t:?}"
        );
        assert_eq!(acc, [0.5, 1.0 / 3.0]);
    }
}
