//! Test support the crates above share (feature `testing`, on in their dev-dependencies).

use std::path::PathBuf;

/// The photo folder: `$FACES_DIR`, or `shared/faces` beside the project.
pub fn faces_dir() -> PathBuf {
    std::env::var_os("FACES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/faces"
            ))
        })
}

/// A photo of the dev set (`../shared/faces/dev`, or `$FACES_DIR/dev`).
pub fn photo(rel: &str) -> Vec<u8> {
    let p = faces_dir().join("dev").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (clone the project beside shared/, or set FACES_DIR)",
            p.display()
        )
    })
}
