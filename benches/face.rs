//! Face pipeline speed: whole-photo processing at the dev photos' sizes and at a camera's
//! 640x480, and 1:N search at 1k / 10k / 100k templates.
//!
//! `cargo bench --bench face` (needs `../shared/faces` beside the repository).

use std::path::PathBuf;
use std::sync::Arc;

use attendance::face::dlib::dlib_rect;
use attendance::face::{
    DecodeLimits, DlibEmbedder, Embedder, Embedding, FacePipeline, Gallery, HogEmbedder,
    PipelineConfig,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::RgbImage;

fn dev(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/faces/dev")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (clone beside ../shared)", p.display()))
}

/// A 448x296 camera photo centred in a 640x480 frame, JPEG-encoded like a webcam's MJPG.
fn camera_frame() -> Vec<u8> {
    let photo = image::load_from_memory(&dev("_unenrolled/caltech_u01/1.jpg"))
        .unwrap()
        .to_rgb8();
    let mut frame = RgbImage::from_pixel(640, 480, image::Rgb([110, 110, 110]));
    image::imageops::replace(&mut frame, &photo, 96, 92);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&frame)
        .unwrap();
    out
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn load_dlib() -> DlibEmbedder {
    DlibEmbedder::load(&models())
        .unwrap_or_else(|e| panic!("{e}: run scripts/fetch-models (scripts/bench does)"))
}

/// A whole photo to an embedding, for each embedder: what one `/identify` costs before
/// matching (the "ms/image").
fn pipeline(c: &mut Criterion) {
    let embedders: [(&str, Arc<dyn Embedder>); 2] = [
        ("hog", Arc::new(HogEmbedder::new())),
        ("dlib", Arc::new(load_dlib())),
    ];
    let mut g = c.benchmark_group("decode+detect+embed");
    for (embedder, emb) in embedders {
        let p = FacePipeline::new(
            PipelineConfig::default(),
            DecodeLimits::default(),
            emb.clone(),
        );
        for (name, bytes) in [
            ("lfw_250x250", dev("lfw_Tony_Blair/3.jpg")),
            ("caltech_448x296", dev("caltech_p02/2.jpg")),
            ("camera_640x480", camera_frame()),
        ] {
            assert!(
                p.accept(&bytes).is_ok(),
                "{name} must contain an acceptable face"
            );
            g.bench_function(format!("{embedder}/{name}"), |b| {
                b.iter(|| {
                    let a = p.accept(&bytes).unwrap();
                    emb.embed(&a.crop)
                })
            });
        }
    }
    g.finish();
}

/// Deterministic pseudo-random unit vectors (xorshift), no extra crate; with a cohort of
/// `cohort` such faces when not 0 (what the CNN's galleries carry: 988).
fn random_gallery(n: usize, dim: usize, cohort: usize) -> (Gallery, Embedding) {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut g = match cohort {
        0 => Gallery::new(dim),
        k => {
            let faces = (0..k * dim).map(|_| next()).collect();
            let c = attendance::face::Cohort::new(dim, faces, 0.4).expect("a valid cohort");
            Gallery::with_cohort(dim, Arc::new(c)).expect("same dimension")
        }
    };
    for i in 0..n {
        let v: Vec<f32> = (0..dim).map(|_| next()).collect();
        g.add(&format!("EMP{:06}", i / 9), &Embedding::normalised(v))
            .unwrap();
    }
    let probe = Embedding::normalised((0..dim).map(|_| next()).collect());
    (g, probe)
}

fn search(c: &mut Criterion) {
    let mut g = c.benchmark_group("1:N search");
    g.sample_size(10);
    // hog-v1 rows are 3528 floats; a 128-d CNN embedding for comparison.
    for (dim, cohort) in [(3528usize, 0), (128, 0), (128, 988)] {
        for n in [1_000usize, 10_000, 100_000] {
            let (gallery, probe) = random_gallery(n, dim, cohort);
            g.throughput(Throughput::Elements(n as u64));
            let name = match cohort {
                0 => format!("dim{dim}"),
                k => format!("dim{dim}+cohort{k}"),
            };
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| gallery.nearest(&probe))
            });
        }
    }
    g.finish();
}

/// dlib's CNN embedder, step by step on one face (needs `scripts/fetch-models`).
fn dlib(c: &mut Criterion) {
    let dlib = load_dlib();
    let hog: Arc<dyn Embedder> = Arc::new(HogEmbedder::new());
    let p = FacePipeline::new(PipelineConfig::default(), DecodeLimits::default(), hog);
    let crop = p
        .accept(&camera_frame())
        .expect("the camera frame has a face")
        .crop;
    let marks = dlib.landmarks(&crop.rgb, dlib_rect(&crop));
    let chip = dlib.chip(&crop.rgb, &marks);
    let mut g = c.benchmark_group("dlib-resnet");
    g.sample_size(20);
    g.bench_function("landmarks", |b| {
        b.iter(|| dlib.landmarks(&crop.rgb, dlib_rect(&crop)))
    });
    g.bench_function("chip", |b| b.iter(|| dlib.chip(&crop.rgb, &marks)));
    g.bench_function("resnet_forward", |b| b.iter(|| dlib.describe(&chip)));
    g.bench_function("embed_probe", |b| b.iter(|| dlib.embed(&crop)));
    g.bench_function("enrol", |b| b.iter(|| dlib.enrol(&crop)));
    g.finish();
}

criterion_group!(benches, pipeline, search, dlib);
criterion_main!(benches);
