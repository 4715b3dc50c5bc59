//! What a roster message may hold, checked field by field before anything reads it: the
//! centre checks what a door sends, and every door checks each page entry again (the
//! record may hold what was stored before these checks existed). A face's template and
//! crop are checked from their headers, allocating nothing on the sender's word.

use super::wire::{Change, Entry, Face, Op, RosterError, invalid};
use attendance_core::config::{check_name, clip};
use attendance_face::decode::png_dimensions;
use attendance_face::{FaceCrop, template, template_dim};

/// Faces one enrolment change may carry: a camera enrolment keeps at most
/// `camera.enrol_frames` (10), HR's central one as many photos.
pub const MAX_FACES: usize = 10;

impl Face {
    /// Checks what a door would read: a known embedder, its template's header against
    /// that embedder's dimension and the bytes present, the crop's header against what
    /// a door makes. Nothing is decoded or allocated on the sender's word.
    pub(crate) fn validate(&self) -> Result<(), RosterError> {
        uuid::Uuid::parse_str(&self.face_id).map_err(|e| invalid("face_id", e.to_string()))?;
        let dim = template_dim(&self.embedder).ok_or_else(|| {
            invalid(
                "embedder",
                format!("{:?} is no embedder here", clip(&self.embedder)),
            )
        })?;
        if self.template.is_none() && self.crop.is_none() {
            return Err(invalid("faces", "a face needs a template or a crop"));
        }
        if let Some(npy) = &self.template {
            template::check(npy, dim).map_err(|e| invalid("template", e.to_string()))?;
        }
        if let Some(png) = &self.crop {
            png_dimensions(png, &FaceCrop::SAVED_LIMITS)
                .map_err(|e| invalid("crop", e.to_string()))?;
        }
        if !(0.0..=1.0).contains(&self.quality) {
            return Err(invalid("quality", "must be a number in 0..=1"));
        }
        if let Some(d) = &self.device_id {
            check_id("device_id", d)?;
        }
        Ok(())
    }
}

fn check_id(field: &'static str, v: &str) -> Result<(), RosterError> {
    attendance_core::config::check_id(v).map_err(|why| invalid(field, why))
}

impl Change {
    /// Checks every field against what the centre's columns and a door's store hold.
    pub fn validate(&self) -> Result<(), RosterError> {
        uuid::Uuid::parse_str(&self.change_id).map_err(|e| invalid("change_id", e.to_string()))?;
        check_id("employee_id", &self.employee_id)?;
        check_id("site", &self.site)?;
        if let Some(d) = &self.device_id {
            check_id("device_id", d)?;
        }
        crate::event::check_time(&self.ts).map_err(|why| invalid("ts", why))?;
        if let Op::Enrol {
            name,
            faces,
            retire,
        } = &self.op
        {
            check_name(name).map_err(|why| invalid("name", why))?;
            for (field, n) in [("faces", faces.len()), ("retire", retire.len())] {
                if n > MAX_FACES {
                    return Err(invalid(field, format!("{n} faces, at most {MAX_FACES}")));
                }
            }
            faces.iter().try_for_each(Face::validate)?;
            for id in retire {
                uuid::Uuid::parse_str(id).map_err(|e| invalid("retire", e.to_string()))?;
            }
        }
        Ok(())
    }
}

impl Entry {
    /// Whether a door may apply this entry of `site`'s page.
    pub fn validate(&self, site: &str) -> Result<(), RosterError> {
        if self.change.site != site {
            return Err(invalid(
                "site",
                format!("{:?} in a page of {site}", clip(&self.change.site)),
            ));
        }
        self.change.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{enrol, face};

    fn field_of(c: &Change) -> &'static str {
        match c.validate() {
            Err(RosterError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    fn with_face(f: impl Fn(&mut Face)) -> Change {
        let mut c = enrol("E1", "x");
        if let Op::Enrol { faces, .. } = &mut c.op {
            f(&mut faces[0]);
        }
        c
    }

    #[test]
    fn faces_are_checked_from_their_headers_against_the_embedder() {
        enrol("E1", "x").validate().unwrap();
        // The roster attack: an .npy header alone, promising 2^36 floats.
        let mut bomb = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 68719476736), }\n";
        bomb.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bomb.extend_from_slice(dict.as_bytes());
        assert_eq!(
            field_of(&with_face(|f| f.template = Some(bomb.clone()))),
            "template"
        );
        // A dlib-sized template said to be HOG's, and the other way round.
        let dlib = template::encode(&[attendance_face::Embedding(vec![0.1; 128])]).unwrap();
        assert_eq!(
            field_of(&with_face(|f| f.template = Some(dlib.clone()))),
            "template"
        );
        assert_eq!(
            field_of(&with_face(|f| f.embedder = "dlib-resnet-v1".into())),
            "template"
        );
        with_face(|f| {
            f.embedder = "dlib-resnet-v1".into();
            f.template = Some(dlib.clone());
        })
        .validate()
        .unwrap();
        assert_eq!(
            field_of(&with_face(|f| f.embedder = "x".repeat(40))),
            "embedder"
        );
        let big = attendance_face::encode::png(&image::RgbImage::new(2000, 40)).unwrap();
        assert_eq!(field_of(&with_face(|f| f.crop = Some(big.clone()))), "crop");
        assert_eq!(
            field_of(&with_face(|f| f.crop = Some(b"png".to_vec()))),
            "crop"
        );
        assert_eq!(field_of(&with_face(|f| f.quality = f32::NAN)), "quality");
        assert_eq!(field_of(&with_face(|f| f.quality = 7.0)), "quality");
        assert_eq!(
            field_of(&with_face(|f| f.device_id = Some("K".repeat(51)))),
            "device_id"
        );
        let mut many = enrol("E1", "x");
        if let Op::Enrol { faces, .. } = &mut many.op {
            *faces = vec![face(); MAX_FACES + 1];
        }
        assert_eq!(field_of(&many), "faces");
        let mut c = enrol("E1", "x");
        c.ts = "0000-01-01T00:00:00Z".into();
        assert_eq!(field_of(&c), "ts");
        let mut c = enrol("E1", "x");
        c.device_id = Some("a/b".into());
        assert_eq!(field_of(&c), "device_id");
        let mut c = enrol("E1", "x");
        if let Op::Enrol { name, .. } = &mut c.op {
            *name = "a\u{7}b".into();
        }
        assert_eq!(field_of(&c), "name");
        // What a door retires: face ids, a bounded list of them.
        let mut c = enrol("E1", "x");
        if let Op::Enrol { retire, .. } = &mut c.op {
            retire.push(uuid::Uuid::now_v7().to_string());
        }
        c.validate().unwrap();
        if let Op::Enrol { retire, .. } = &mut c.op {
            retire.push("'; DROP TABLE roster_faces; --".into());
        }
        assert_eq!(field_of(&c), "retire");
        if let Op::Enrol { retire, .. } = &mut c.op {
            *retire = vec![uuid::Uuid::now_v7().to_string(); MAX_FACES + 1];
        }
        assert_eq!(field_of(&c), "retire");
    }

    #[test]
    fn a_page_entry_of_another_site_is_not_applied() {
        let e = Entry {
            revision: 1,
            change: enrol("E1", "x"),
        };
        e.validate("hq").unwrap();
        assert!(matches!(
            e.validate("br"),
            Err(RosterError::Invalid { field: "site", .. })
        ));
    }
}
