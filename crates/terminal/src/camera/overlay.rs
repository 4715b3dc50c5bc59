//! What the person at the door sees over the live picture: the ellipse guide, their face
//! box coloured by state, and the guidance in Korean or English.

use std::sync::OnceLock;

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_rect_mut, draw_hollow_ellipse_mut, draw_hollow_rect_mut, draw_text_mut, text_size,
};
use imageproc::rect::Rect;

use super::LiveAnalysis;
use attendance_core::i18n::{Locale, Msg};
use attendance_core::reason::QualityIssue;
use attendance_face::{EllipseGuide, FaceBox, Rejection};

/// Noto Sans CJK KR Bold (SIL OFL 1.1), subset to ASCII and the characters of our messages
/// by `scripts/make-font-subset`.
static FONT_BYTES: &[u8] = include_bytes!("../../../../assets/fonts/NotoSansKR-Bold-subset.otf");

pub(crate) fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // Compiled in and checked by a unit test.
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("embedded font parses"))
}

/// Colours of the guide (a test checks stream frames for these exact pixels).
pub const ELLIPSE: Rgb<u8> = Rgb([0, 190, 255]);
/// Face box: ready.
pub(crate) const READY: Rgb<u8> = Rgb([0, 200, 60]);
/// Face box: move closer / farther / into the guide, or fix the light.
pub(crate) const ADJUST: Rgb<u8> = Rgb([255, 210, 0]);
/// Face box: several faces.
pub(crate) const SEVERAL: Rgb<u8> = Rgb([255, 130, 0]);

/// What the overlay shows for an analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Guide {
    pub(crate) message: Msg,
    /// The box to draw and its colour (none when there is no face).
    pub(crate) face: Option<(FaceBox, Rgb<u8>)>,
}

impl Guide {
    pub(crate) fn of(a: &LiveAnalysis) -> Guide {
        let largest = FaceBox::largest(&a.faces);
        match &a.verdict {
            Ok(f) => Guide {
                message: Msg::Ready,
                face: Some((f.face, READY)),
            },
            Err(r) => {
                let colour = match r {
                    Rejection::MultiFace { .. } => SEVERAL,
                    Rejection::BadQuality(QualityIssue::TooSmall | QualityIssue::TooClose) => {
                        ADJUST
                    }
                    _ => ADJUST,
                };
                Guide {
                    message: r.guidance(),
                    face: largest.map(|b| (b, colour)),
                }
            }
        }
    }
}

/// Draws the guide (and the analysis, if any) on a copy of the frame.
pub(crate) fn draw(
    frame: &RgbImage,
    analysis: Option<&LiveAnalysis>,
    ellipse: &EllipseGuide,
    locale: Locale,
) -> RgbImage {
    let mut img = frame.clone();
    let (w, h) = img.dimensions();
    let (cx, cy, a, b) = ellipse.in_frame(w, h);
    let thick = (w.min(h) / 160).max(2) as i32;
    for t in 0..thick {
        draw_hollow_ellipse_mut(
            &mut img,
            (cx as i32, cy as i32),
            a as i32 + t,
            b as i32 + t,
            ELLIPSE,
        );
    }
    let guide = analysis.map(Guide::of).unwrap_or(Guide {
        message: Msg::Reason(attendance_core::reason::Reason::NoFace),
        face: None,
    });
    if let Some((f, colour)) = guide.face {
        for t in 0..thick {
            let (x, y) = (f.x as i32 - t, f.y as i32 - t);
            let (bw, bh) = (
                (f.w as i32 + 2 * t).max(1) as u32,
                (f.h as i32 + 2 * t).max(1) as u32,
            );
            draw_hollow_rect_mut(&mut img, Rect::at(x, y).of_size(bw, bh), colour);
        }
    }
    // Guidance on a dark band at the bottom.
    let text = locale.text(guide.message);
    let px = (h as f32 / 18.0).max(12.0);
    let scale = PxScale::from(px);
    let (tw, th) = text_size(scale, font(), text);
    let band = th + th / 2 + 4;
    if band < h {
        draw_filled_rect_mut(
            &mut img,
            Rect::at(0, (h - band) as i32).of_size(w, band),
            Rgb([0, 0, 0]),
        );
        let x = (w.saturating_sub(tw) / 2) as i32;
        let y = (h - band + band.saturating_sub(th) / 2) as i32;
        draw_text_mut(&mut img, Rgb([255, 255, 255]), x, y, scale, font(), text);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::Font;

    #[test]
    fn the_font_has_every_character_of_every_message() {
        use attendance_core::reason::Reason;
        let mut msgs: Vec<Msg> = Reason::iter().map(Msg::Reason).collect();
        msgs.extend(QualityIssue::iter().map(Msg::Quality));
        msgs.extend([
            Msg::Ready,
            Msg::Ambiguous,
            Msg::Recognised,
            Msg::DuplicatePunch,
            Msg::Enrolled,
            Msg::Punched,
        ]);
        for m in msgs {
            for locale in [Locale::Ko, Locale::En] {
                for c in locale.text(m).chars().filter(|c| !c.is_whitespace()) {
                    assert_ne!(
                        font().glyph_id(c).0,
                        0,
                        "no glyph for {c:?} in {m:?}: run scripts/make-font-subset"
                    );
                }
            }
        }
    }

    #[test]
    fn draws_the_ellipse_and_the_band() {
        let frame = RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]));
        let out = draw(&frame, None, &EllipseGuide::default(), Locale::Ko);
        // The ellipse's leftmost point: centre x minus the semi-axis (0.35 * 640 / 2 = 112).
        assert_eq!(*out.get_pixel(320 - 112, 240), ELLIPSE);
        // The band is black with white text in it.
        let band: Vec<_> = (0..640).map(|x| *out.get_pixel(x, 470)).collect();
        assert!(band.contains(&Rgb([0, 0, 0])));
        let row_with_text = (440..480).any(|y| (0..640).any(|x| out.get_pixel(x, y).0[0] > 200));
        assert!(row_with_text);
    }
}
