//! The buddy-punching guard (`camera.liveness`) measured on the dev photos: a still
//! photo held up to the camera and moved, turned, scaled or tilted between frames must
//! never pass; how often photos of a real person taken at other moments (the nearest the
//! dataset has to a head moving) would pass is printed, not hidden. Figures in docs/book
//! "Buddy punching".

mod common;

use std::sync::Arc;

use attendance::face::liveness::LivenessRule;
use attendance::face::liveness_eval::measure;
use attendance::face::{DecodeLimits, DlibEmbedder, FacePipeline, PipelineConfig};

#[test]
fn still_photos_never_pass_and_real_heads_are_reported() {
    let dlib = Arc::new(DlibEmbedder::load(&common::models_dir()).expect("models load"));
    let pipeline = FacePipeline::new(
        PipelineConfig::default(),
        DecodeLimits::default(),
        dlib.clone(),
    );
    let dev = common::faces_dir().join("dev");
    let r = measure(&dev, &pipeline, &dlib, 2, 3).expect("dev measured");
    assert!(
        r.still_turns.len() >= 100,
        "{} stills measured",
        r.still_turns.len()
    );
    assert!(
        r.person_turns.len() >= 100,
        "{} runs measured",
        r.person_turns.len()
    );
    let rule = LivenessRule::DEFAULT;
    let max = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(*x));
    let passed = |v: &[f64]| v.iter().filter(|t| **t >= rule.min_turn).count();
    let still_max = max(&r.still_turns);
    let mut sorted = r.person_turns.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    eprintln!(
        "liveness on dev: {} still photos (7 frames each: held, 3 jittered, 2 moved/turned/scaled, 1 tilted): \
         largest turn {still_max:.4}, passed {}; {} runs of 3 photos of one person: median turn {median:.4}, \
         refused {} ({:.1} %); frames without a face {}",
        r.still_turns.len(),
        passed(&r.still_turns),
        r.person_turns.len(),
        r.person_turns.len() - passed(&r.person_turns),
        100.0 * (r.person_turns.len() - passed(&r.person_turns)) as f64
            / r.person_turns.len().max(1) as f64,
        r.faceless_frames,
    );
    let mut st = r.still_turns.clone();
    st.sort_by(f64::total_cmp);
    eprintln!(
        "stills: p50 {:.4} p90 {:.4} top {:?}",
        st[st.len() / 2],
        st[st.len() * 9 / 10],
        &st[st.len() - 6..]
    );
    eprintln!(
        "people: p10 {:.4} p25 {:.4}",
        sorted[sorted.len() / 10],
        sorted[sorted.len() / 4]
    );
    assert_eq!(
        passed(&r.still_turns),
        0,
        "a still photo passed as a head (largest turn {still_max:.4})"
    );
    // The rule is not a wall everybody stops at: most runs of one person pass.
    assert!(
        passed(&r.person_turns) * 2 > r.person_turns.len(),
        "median turn {median:.4}"
    );
}
