//! `[face]` in the configuration: which embedder, its decision rule, the pipeline's gates.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};

use super::rule::RuleOverrides;
use super::{DlibEmbedder, Embedder, HogEmbedder, MatchRule, PipelineConfig};
use attendance_core::config::{ConfigError, check};

/// The embedder a configuration names. The names are serde's (one list, used by the
/// configuration, `eval --embedder` and the error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderChoice {
    /// dlib's ResNet when its model files are in `models_dir`, else HOG (a terminal
    /// without the models still works, less well).
    Auto,
    Hog,
    /// The spec's own HOG recipe, for comparison.
    HogSpec,
    DlibResnet,
}

impl FromStr for EmbedderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::deserialize(s.into_deserializer()).map_err(|e: serde::de::value::Error| e.to_string())
    }
}

impl EmbedderChoice {
    /// Loads the embedder (reads the model files for the CNN).
    pub fn load(self, models_dir: &Path) -> Result<Arc<dyn Embedder>, String> {
        let dlib = || {
            DlibEmbedder::load(models_dir)
                .map(|e| Arc::new(e) as Arc<dyn Embedder>)
                .map_err(|e| {
                    format!("dlib-resnet: {e} (scripts/fetch-models downloads the model files)")
                })
        };
        match self {
            EmbedderChoice::Auto if DlibEmbedder::available(models_dir) => dlib(),
            EmbedderChoice::Auto | EmbedderChoice::Hog => Ok(Arc::new(HogEmbedder::new())),
            EmbedderChoice::HogSpec => Ok(Arc::new(HogEmbedder::spec())),
            EmbedderChoice::DlibResnet => dlib(),
        }
    }
}

/// The length of the templates the embedder called `name` makes; `None` for a name no
/// embedder here has. What a template from elsewhere (a roster face) is checked against
/// before it is read.
pub fn template_dim(name: &str) -> Option<usize> {
    match name {
        "hog-v1" => Some(HogEmbedder::new().dim()),
        "hog-spec" => Some(HogEmbedder::spec().dim()),
        DlibEmbedder::NAME => Some(DlibEmbedder::DIM),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceSettings {
    pub embedder: EmbedderChoice,
    /// Largest accepted distance (the spec's `TOLERANCE`); the embedder's calibrated
    /// default when unset.
    pub tolerance: Option<f32>,
    /// Smallest gap to the runner-up person; the embedder's default when unset.
    pub margin: Option<f32>,
    /// Largest ratio of the nearest distance to the neighbourhood's (both the probe's
    /// and the matched person's); the embedder's default when unset, 1 or more to
    /// switch the check off.
    pub neighbour_ratio: Option<f32>,
    /// 1:1 (`/identify` with an `employee_id`): largest distance to that person's
    /// templates; the embedder's calibrated default when unset.
    pub verify_tolerance: Option<f32>,
    /// Answer 1:N even when the gallery is larger than the embedder can tell apart
    /// (HOG above a few dozen people): without it such a terminal verifies 1:1 only.
    pub identify_beyond_limit: bool,
    /// Folder holding the CNN's model files.
    pub models_dir: PathBuf,
    /// Detection and quality gates.
    pub pipeline: PipelineConfig,
}

impl Default for FaceSettings {
    fn default() -> Self {
        Self {
            embedder: EmbedderChoice::Auto,
            tolerance: None,
            margin: None,
            neighbour_ratio: None,
            verify_tolerance: None,
            identify_beyond_limit: false,
            models_dir: PathBuf::from("./models"),
            pipeline: PipelineConfig::default(),
        }
    }
}

impl FaceSettings {
    /// Range checks the types cannot express; keys relative to `[face]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = self.tolerance {
            check(t > 0.0 && t <= 2.0, "tolerance", || {
                format!("must be in (0, 2], got {t}")
            })?;
        }
        if let Some(t) = self.verify_tolerance {
            check(t > 0.0 && t <= 2.0, "verify_tolerance", || {
                format!("must be in (0, 2], got {t}")
            })?;
        }
        if let Some(m) = self.margin {
            check((0.0..=1.0).contains(&m), "margin", || {
                format!("must be in [0, 1], got {m}")
            })?;
        }
        if let Some(r) = self.neighbour_ratio {
            check(r > 0.0 && r.is_finite(), "neighbour_ratio", || {
                format!("must be a positive number, got {r}")
            })?;
        }
        self.pipeline.validate().map_err(|e| e.within("pipeline"))
    }

    /// The decision rule for `embedder`: the configured values, else its calibrated ones.
    pub fn rule(&self, embedder: &dyn Embedder) -> MatchRule {
        MatchRule::resolve(embedder.calibration().rule, self.overrides())
    }

    /// The decision values this configuration sets.
    pub fn overrides(&self) -> RuleOverrides {
        RuleOverrides {
            tolerance: self.tolerance,
            margin: self.margin,
            neighbour_ratio: self.neighbour_ratio,
            verify_tolerance: self.verify_tolerance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_names_are_one_list() {
        for (name, choice) in [
            ("auto", EmbedderChoice::Auto),
            ("hog", EmbedderChoice::Hog),
            ("hog-spec", EmbedderChoice::HogSpec),
            ("dlib-resnet", EmbedderChoice::DlibResnet),
        ] {
            assert_eq!(name.parse::<EmbedderChoice>(), Ok(choice));
            assert_eq!(serde_json::to_value(choice).unwrap(), name);
        }
        let e = "cnn".parse::<EmbedderChoice>().unwrap_err();
        assert!(e.contains("dlib-resnet") && e.contains("cnn"), "{e}");
    }

    #[test]
    fn template_dims_are_the_embedders_own() {
        for e in [HogEmbedder::new(), HogEmbedder::spec()] {
            assert_eq!(template_dim(e.name()), Some(e.dim()));
        }
        assert_eq!(template_dim("dlib-resnet-v1"), Some(128));
        assert_eq!(template_dim("hog-v2"), None);
    }

    #[test]
    fn auto_without_models_is_hog_and_dlib_without_models_says_how_to_get_them() {
        let empty = std::env::temp_dir().join("att-no-models");
        let hog = EmbedderChoice::Auto.load(&empty).unwrap();
        assert_eq!(hog.name(), "hog-v1");
        let e = EmbedderChoice::DlibResnet.load(&empty).err().unwrap();
        assert!(e.contains("scripts/fetch-models"), "{e}");
    }

    #[test]
    fn validation_names_the_key_within_the_section() {
        let mut f = FaceSettings::default();
        f.validate().unwrap();
        f.tolerance = Some(5.0);
        assert_eq!(f.validate().unwrap_err().key, "tolerance");
        let mut f = FaceSettings::default();
        f.pipeline.detector.window_step = 0;
        assert_eq!(
            f.validate().unwrap_err().key,
            "pipeline.detector.window_step"
        );
    }
}
