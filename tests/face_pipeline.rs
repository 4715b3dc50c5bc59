//! The face pipeline on real photos: every reason code, hostile bytes, and the protocol.

mod common;

use std::io::Cursor;
use std::sync::Arc;

use attendance::face::eval::Protocol;
use attendance::face::{
    DecodeLimits, FacePipeline, Framing, HogEmbedder, PipelineConfig, PipelineError, Rejection,
};
use attendance::reason::{QualityIssue, Reason};
use image::{ImageFormat, RgbImage};

fn pipeline() -> FacePipeline {
    FacePipeline::new(
        PipelineConfig::default(),
        DecodeLimits::default(),
        Arc::new(HogEmbedder::new()),
    )
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A good, centred, single-face camera photo.
fn photo() -> RgbImage {
    image::load_from_memory(&common::read("_unenrolled/caltech_u01/1.jpg"))
        .unwrap()
        .to_rgb8()
}

fn rejection(bytes: &[u8]) -> Rejection {
    match pipeline().accept(bytes) {
        Err(PipelineError::Rejected(r)) => r,
        Err(other) => panic!("expected a rejection, got {other:?}"),
        Ok(a) => panic!("expected a rejection, got a face at {:?}", a.face),
    }
}

#[test]
fn good_photo_is_accepted_with_its_face_centred() {
    let a = pipeline().accept(&png(&photo())).unwrap();
    let (cx, cy) = a.face.centre();
    assert!(
        (150.0..300.0).contains(&cx) && (80.0..220.0).contains(&cy),
        "{:?}",
        a.face
    );
    assert!(a.quality.score() > 0.3);
}

#[test]
fn no_face_on_a_chart() {
    assert_eq!(
        rejection(&common::read("_negatives/no_face_chart.jpg")),
        Rejection::NoFace
    );
}

#[test]
fn multi_face_on_group_photos() {
    for f in [
        "_negatives/two_faces_couple.jpg",
        "_negatives/group_selfie_many_faces.jpg",
    ] {
        let r = rejection(&common::read(f));
        assert!(
            matches!(r, Rejection::MultiFace { faces } if faces >= 2),
            "{f}: {r:?}"
        );
        assert_eq!(r.reason(), Reason::MultiFace);
    }
}

#[test]
fn out_of_area_when_the_face_is_at_the_side_of_a_camera_frame() {
    let p = photo();
    let mut canvas = RgbImage::from_pixel(p.width() * 2, p.height(), image::Rgb([90, 90, 90]));
    image::imageops::replace(&mut canvas, &p, 0, 0);
    let camera = pipeline().analyse(&canvas, Framing::Guided);
    assert_eq!(camera.verdict.unwrap_err(), Rejection::OutOfArea);
    // The same picture uploaded: nobody framed it against the guide.
    assert!(pipeline().accept(&png(&canvas)).is_ok());
    // Unless the operator asks for the spec's literal behaviour.
    let mut config = PipelineConfig::default();
    config.quality.ellipse_on_uploads = true;
    let strict = FacePipeline::new(
        config,
        DecodeLimits::default(),
        Arc::new(HogEmbedder::new()),
    );
    assert!(matches!(
        strict.accept(&png(&canvas)),
        Err(PipelineError::Rejected(Rejection::OutOfArea))
    ));
}

#[test]
fn too_small_when_far_away() {
    let p = photo();
    let (w, h) = (p.width() * 4, p.height() * 4);
    let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([90, 90, 90]));
    let (x, y) = ((w - p.width()) / 2, (h - p.height()) / 2);
    image::imageops::replace(&mut canvas, &p, i64::from(x), i64::from(y));
    assert_eq!(
        rejection(&png(&canvas)),
        Rejection::BadQuality(QualityIssue::TooSmall)
    );
}

#[test]
fn too_close_when_the_face_fills_the_frame() {
    let p = photo();
    let big = image::imageops::resize(
        &p,
        p.width() * 2,
        p.height() * 2,
        image::imageops::FilterType::Triangle,
    );
    // Face was ~(142,66,156): at 2x it is ~(284,132,312) in 896x592; keep 380x330 around it.
    let crop = image::imageops::crop_imm(&big, 250, 130, 380, 330).to_image();
    assert_eq!(
        rejection(&png(&crop)),
        Rejection::BadQuality(QualityIssue::TooClose)
    );
}

#[test]
fn too_dark_and_too_bright() {
    let p = photo();
    let dark = RgbImage::from_fn(p.width(), p.height(), |x, y| {
        image::Rgb(p.get_pixel(x, y).0.map(|v| (f32::from(v) * 0.22) as u8))
    });
    assert_eq!(
        rejection(&png(&dark)),
        Rejection::BadQuality(QualityIssue::TooDark)
    );
    let bright = RgbImage::from_fn(p.width(), p.height(), |x, y| {
        image::Rgb(
            p.get_pixel(x, y)
                .0
                .map(|v| (f32::from(v) * 0.35 + 170.0) as u8),
        )
    });
    assert_eq!(
        rejection(&png(&bright)),
        Rejection::BadQuality(QualityIssue::TooBright)
    );
}

#[test]
fn blurred_when_out_of_focus() {
    let blurred = imageproc::filter::gaussian_blur_f32(&photo(), 4.0);
    assert_eq!(
        rejection(&png(&blurred)),
        Rejection::BadQuality(QualityIssue::Blurred)
    );
}

#[test]
fn hostile_bytes_are_bad_image_never_a_panic() {
    let jpeg = common::read("caltech_p01/2.jpg");
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff, 0xd8],
        jpeg[..20].to_vec(),
        b"GIF89a not supported".to_vec(),
        vec![0u8; 4096],
    ];
    // A PNG header claiming 60000x60000 (a decompression bomb) with a tiny body.
    let mut bomb = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bomb, 60000, 60000);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        let _ = w.write_image_data(&[0u8; 16]);
    }
    cases.push(bomb);
    for (i, bytes) in cases.iter().enumerate() {
        match pipeline().accept(bytes) {
            Err(PipelineError::Decode(_)) => {}
            Err(other) => panic!("case {i}: expected bad_image, got {other:?}"),
            Ok(a) => panic!("case {i}: expected bad_image, got a face at {:?}", a.face),
        }
    }
    // Truncated JPEG bodies still decode partially in some decoders: they must not panic,
    // whatever the verdict.
    for cut in [100, 1000, jpeg.len() / 2, jpeg.len() - 10] {
        let _ = pipeline().accept(&jpeg[..cut]);
    }
}

#[test]
fn eval_protocol_on_dev_gives_sane_numbers() {
    let p = pipeline();
    let emb = p.embedder().clone();
    let rule = emb.calibration().rule;
    let protocol = Protocol::new(common::faces_dir().join("dev"));
    let eval = attendance::face::eval::evaluate(&p, &protocol, rule).unwrap();
    let r = &eval.report;
    assert_eq!(r.identities, 60);
    assert_eq!(r.genuine_probes + r.impostor_probes + r.enrolled, 662);
    assert!(r.enrolled >= 29, "{r:?}");
    // The issue's bar: strangers kept out, and clearly better than the spec's pipeline
    // (rank1 0.299, tar_at_far1 0.201).
    assert!(r.far <= 0.01, "far {}", r.far);
    assert!(r.rank1 >= 0.45, "rank1 {}", r.rank1);
    assert!(r.tar_at_far1 >= 0.21, "tar_at_far1 {}", r.tar_at_far1);
    assert!(r.fta < 0.06, "fta {}", r.fta);
    // 1:1: every probe claiming every other enrolled person (~18,000 claims); one in a
    // thousand is the issue's bar. The genuine claims do at least as well as 1:N.
    assert!(r.verify_impostor_attempts > 10_000, "{r:?}");
    assert!(r.verify_far <= 0.001, "verify_far {}", r.verify_far);
    assert!(
        r.verify_tar >= r.tar,
        "verify_tar {} tar {}",
        r.verify_tar,
        r.tar
    );
    // Every probe is counted once: accepted as the right person, as someone else
    // (genuine) or anyone (impostor), or failed with a reason.
    let count = |rate: f64, n: usize| (rate * n as f64).round() as usize;
    let failed: usize = r.fail_reasons.values().sum();
    assert_eq!(
        count(r.tar, r.genuine_probes)
            + count(r.misid, r.genuine_probes)
            + count(r.far, r.impostor_probes)
            + failed,
        r.genuine_probes + r.impostor_probes,
        "{r:?}"
    );
    // Every image's result is there for `--dump`: embeddings of the embedder's size, or
    // the reason there are none.
    let listed: usize = attendance::face::eval::list_dataset(&common::faces_dir().join("dev"))
        .unwrap()
        .iter()
        .map(|id| id.images.len())
        .sum();
    assert_eq!(eval.images.len(), listed);
    for img in &eval.images {
        assert_eq!(
            img.reason.is_some(),
            img.embeddings.is_empty(),
            "{}",
            img.image
        );
        assert!(
            img.embeddings.iter().all(|e| e.len() == emb.dim()),
            "{}",
            img.image
        );
    }
}

#[test]
fn eval_replays_probes_as_camera_sequences_and_votes() {
    // Four people of the camera-like Caltech set: two employees, two strangers.
    let dir = tempfile::tempdir().unwrap();
    for who in ["caltech_p01", "caltech_p02", "caltech_p03", "caltech_p04"] {
        let to = dir.path().join(who);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(common::dev_photo(who)).unwrap().take(5) {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let p = pipeline();
    let protocol = Protocol {
        sequence_frames: 4,
        sequence_tries: 2,
        ..Protocol::new(dir.path())
    };
    let rule = p.embedder().calibration().rule;
    let r = attendance::face::eval::evaluate(&p, &protocol, rule)
        .unwrap()
        .report;
    let kinds: Vec<(usize, bool, usize)> = r
        .sequences
        .iter()
        .map(|x| (x.votes, x.fused, x.tries))
        .collect();
    let want: Vec<(usize, bool, usize)> = [(1, false), (2, false), (3, false), (0, true)]
        .into_iter()
        .flat_map(|(v, f)| [(v, f, 1), (v, f, 2)])
        .collect();
    assert_eq!(kinds, want, "{r:?}");
    let one_try: Vec<_> = r.sequences.iter().filter(|x| x.tries == 1).collect();
    let s = &one_try[..3];
    // One matching frame decides with one vote, so more votes can only accept fewer
    // sequences (of employees or strangers).
    for more in &s[1..] {
        assert!(
            more.far <= s[0].far && more.tar + more.misid <= s[0].tar + s[0].misid,
            "{s:?}"
        );
    }
    // The camera-like photos replayed are recognised, and a decision by k votes took at
    // least k frames; a fused one, the whole window.
    assert!(s[0].tar >= 0.5, "{s:?}");
    for x in s.iter().filter(|x| x.tar > 0.0) {
        assert!(
            x.frames_to_decide >= x.votes as f64 && x.frames_to_decide <= 4.0,
            "{s:?}"
        );
    }
    let fused = one_try[3];
    assert!(
        fused.tar >= 0.5 && fused.frames_to_decide == 4.0,
        "{fused:?}"
    );
    // A second window starts where the first ended: it can only add acceptances.
    for pair in r.sequences.chunks(2) {
        let (once, twice) = (&pair[0], &pair[1]);
        assert!(
            twice.tar + twice.misid >= once.tar + once.misid && twice.far >= once.far,
            "{pair:?}"
        );
    }
    // Without the option nothing is replayed.
    let plain = attendance::face::eval::evaluate(&p, &Protocol::new(dir.path()), rule)
        .unwrap()
        .report;
    assert!(plain.sequences.is_empty());
}

#[test]
fn eval_scores_random_galleries_of_each_size() {
    // Eight people of dev (four employees, four strangers), ten distractors.
    let dir = tempfile::tempdir().unwrap();
    let ids = attendance::face::eval::list_dataset(&common::faces_dir().join("dev")).unwrap();
    for id in ids.iter().take(8) {
        let to = dir.path().join(&id.name);
        std::fs::create_dir_all(&to).unwrap();
        for f in id.images.iter().take(4) {
            std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    let p = pipeline();
    let rule = p.embedder().calibration().rule;
    let protocol = Protocol {
        distractors: Some(common::faces_dir().join("distractors")),
        distractor_limit: Some(10),
        gallery_sizes: vec![2, 100],
        repeats: 6,
        seed: 5,
        ..Protocol::new(dir.path())
    };
    let r = attendance::face::eval::evaluate(&p, &protocol, rule)
        .unwrap()
        .report;
    assert_eq!(r.gallery_seed, Some(5));
    let [small, all] = &r.sizes[..] else {
        panic!("two sizes: {r:?}")
    };
    assert_eq!((small.size, small.gallery, small.galleries), (2, 2, 6));
    // Two employees enrolled: the others probe as strangers.
    assert!(small.genuine_probes < r.genuine_probes as f64, "{small:?}");
    assert!(
        small.impostor_probes > r.impostor_probes as f64,
        "{small:?}"
    );
    assert!(small.far_worst >= small.far_mean && small.tar_worst <= small.tar_mean);
    // More people than there are: every gallery is the whole one, scored as the protocol
    // scores it.
    assert_eq!(all.gallery, r.gallery, "{r:?}");
    assert_eq!((all.tar_mean, all.tar_worst), (r.tar, r.tar));
    assert_eq!((all.far_mean, all.far_worst), (r.far, r.far));
    assert_eq!((all.misid_mean, all.misid_worst), (r.misid, r.misid));
}

#[test]
fn eval_pairs_scores_view_2_folds_and_counts_faceless_pairs() {
    // Four dev people and a chart with no face, named as LFW names its images.
    let dir = tempfile::tempdir().unwrap();
    let ids = attendance::face::eval::list_dataset(&common::faces_dir().join("dev")).unwrap();
    let people: Vec<_> = ids.iter().filter(|i| i.images.len() >= 2).take(4).collect();
    let mut names = Vec::new();
    for (k, id) in people.iter().enumerate() {
        let name = format!("P{k}");
        std::fs::create_dir_all(dir.path().join(&name)).unwrap();
        for (i, f) in id.images.iter().take(2).enumerate() {
            let to = dir
                .path()
                .join(&name)
                .join(format!("{name}_{:04}.jpg", i + 1));
            std::fs::copy(f, to).unwrap();
        }
        names.push(name);
    }
    std::fs::create_dir_all(dir.path().join("Chart")).unwrap();
    std::fs::write(
        dir.path().join("Chart/Chart_0001.jpg"),
        std::fs::read(common::faces_dir().join("dev/_negatives/no_face_chart.jpg")).unwrap(),
    )
    .unwrap();
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(
        &pairs,
        "2 2\nP0 1 2\nP1 1 2\nP0 1 P1 2\nP0 2 Chart 1\nP2 1 2\nP3 1 2\nP2 1 P3 1\nP3 2 P2 2\n",
    )
    .unwrap();
    let p = pipeline();
    let gated = attendance::face::eval::evaluate_pairs(&p, dir.path(), &pairs, true).unwrap();
    let free = attendance::face::eval::evaluate_pairs(&p, dir.path(), &pairs, false).unwrap();
    for r in [&gated, &free] {
        assert_eq!(
            (r.folds, r.pairs, r.fold_threshold.len()),
            (2, 8, 2),
            "{r:?}"
        );
        let mean = r.fold_accuracy.iter().sum::<f64>() / 2.0;
        assert!((r.accuracy - mean).abs() < 1e-12 && (0.0..=1.0).contains(&r.accuracy));
    }
    // The chart has no face: an error with the gates (a dev photo the gates refuse may
    // add one); without them a face or a centred box for every photo.
    assert!(gated.failed >= 1 && free.failed == 0, "{gated:?} {free:?}");
    assert!(
        gated.fold_accuracy[0] <= 0.75,
        "the faceless pair counts as an error"
    );
    // A pairs file that does not say what it holds is refused by line.
    std::fs::write(&pairs, "2 2\nP0 1\n").unwrap();
    let e = attendance::face::eval::evaluate_pairs(&p, dir.path(), &pairs, true).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}
