//! Punch thumbnails (`storage.keep_punch_images`): a small JPEG of the face with each
//! attempt, for a glance in an HR tool. Failed attempts' thumbnails are rationed
//! (`storage.failure_images_per_hour`): a stranger lingering or a poster in view must not
//! wear the card out with pictures nobody looks at.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::TerminalError;
use crate::store::{StorageSettings, Store};
use attendance_core::ration::Failures;
use attendance_face::{FaceCrop, encode};

/// Quality of the punch thumbnails (small, for a glance in an HR tool).
const QUALITY: u8 = 80;

pub(super) struct Thumbnails {
    store: Arc<Store>,
    keep: bool,
    failures_per_hour: usize,
    /// Failed attempts' thumbnails kept within the last hour.
    failures: Mutex<Failures<()>>,
}

impl Thumbnails {
    pub(super) fn new(store: Arc<Store>, s: &StorageSettings) -> Thumbnails {
        Thumbnails {
            store,
            keep: s.keep_punch_images,
            failures_per_hour: s.failure_images_per_hour as usize,
            failures: Mutex::new(Failures::new(Duration::from_secs(3600))),
        }
    }

    /// Saves `crop` as the thumbnail of an attempt (`recognised` or failed) when the
    /// settings keep one: its file name.
    pub(super) fn keep(
        &self,
        crop: Option<&FaceCrop>,
        recognised: bool,
    ) -> Result<Option<String>, TerminalError> {
        let Some(crop) = crop.filter(|_| self.keep) else {
            return Ok(None);
        };
        if !recognised && !self.ration(Instant::now()) {
            return Ok(None);
        }
        let name = format!("punch_{}.jpg", uuid::Uuid::now_v7().simple());
        let jpeg = encode::jpeg(&crop.rgb, QUALITY)?;
        self.store
            .write_file(self.store.image_dir(), &name, &jpeg)?;
        Ok(Some(name))
    }

    /// Takes one of the hour's failure thumbnails, if any is left.
    fn ration(&self, now: Instant) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if f.count(&(), now) >= self.failures_per_hour {
            return false;
        }
        f.fail((), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attendance_face::FaceBox;

    fn crop() -> FaceCrop {
        FaceCrop {
            rgb: image::RgbImage::new(40, 40),
            face: FaceBox {
                x: 0.0,
                y: 0.0,
                w: 40.0,
                h: 40.0,
                score: 1.0,
            },
        }
    }

    fn thumbnails(dir: &std::path::Path, keep: bool, per_hour: u32) -> Thumbnails {
        let s = StorageSettings {
            keep_punch_images: keep,
            failure_images_per_hour: per_hour,
            ..StorageSettings::default()
        };
        Thumbnails::new(Arc::new(Store::open(&s.paths(dir)).unwrap()), &s)
    }

    #[test]
    fn failed_attempts_keep_at_most_the_hours_ration_recognised_ones_all() {
        let dir = tempfile::tempdir().unwrap();
        let t = thumbnails(dir.path(), true, 2);
        let kept = |recognised| t.keep(Some(&crop()), recognised).unwrap().is_some();
        assert_eq!([kept(false), kept(false), kept(false)], [true, true, false]);
        assert!(
            kept(true) && kept(true),
            "recognised punches are not rationed"
        );
        let files = crate::store::files::list(t.store.image_dir()).unwrap();
        assert_eq!(files.len(), 4, "{files:?}");
        // An hour later the ration is back.
        assert!(t.ration(Instant::now() + Duration::from_secs(3601)));
        let none = thumbnails(&dir.path().join("none"), true, 0);
        assert_eq!(none.keep(Some(&crop()), false).unwrap(), None);
        let off = thumbnails(&dir.path().join("off"), false, 60);
        assert_eq!(off.keep(Some(&crop()), true).unwrap(), None);
    }
}
