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
    assert!(r.stills.len() >= 100, "{} stills measured", r.stills.len());
    assert!(r.people.len() >= 100, "{} runs measured", r.people.len());
    // Passing is the rule's own decision, as the camera's.
    let rule = LivenessRule::DEFAULT;
    let passed = |samples: &[Vec<f64>]| samples.iter().filter(|o| rule.live(o)).count();
    let (still_turns, person_turns) = (r.still_turns(), r.person_turns());
    let still_max = still_turns.iter().fold(0.0f64, |m, x| m.max(*x));
    let mut sorted = person_turns;
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    eprintln!(
        "liveness on dev: {} still photos (7 frames each: held, 3 jittered, 2 moved/turned/scaled, 1 tilted): \
         largest turn {still_max:.4}, passed {}; {} runs of 3 photos of one person: median turn {median:.4}, \
         refused {} ({:.1} %); frames without a face {}",
        r.stills.len(),
        passed(&r.stills),
        r.people.len(),
        r.people.len() - passed(&r.people),
        100.0 * (r.people.len() - passed(&r.people)) as f64 / r.people.len().max(1) as f64,
        r.faceless_frames,
    );
    let mut st = still_turns;
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
        passed(&r.stills),
        0,
        "a still photo passed as a head (largest turn {still_max:.4})"
    );
    // The rule is not a wall everybody stops at: most runs of one person pass.
    assert!(
        passed(&r.people) * 2 > r.people.len(),
        "median turn {median:.4}"
    );
}
