//! The buddy-punching guard (`camera.liveness`): is this a head, or a photo of one held up
//! to the camera? From the five landmarks only (two corners of each eye, the base of the
//! nose), over the frames of one decision. A photo is flat: moved, turned or scaled in
//! its plane, every point of it moves by one similarity, so where the nose sits across
//! the eye line (as a share of the eye distance) does not change. A head is not flat:
//! the nose is in front of the eyes, and the least turn of the head moves it across the
//! eye line. The guard asks for that movement: a person standing perfectly still is
//! asked to turn their head (the kiosk says so), a still photo never gets through.
//! Pure: the camera supplies the landmarks, the terminal decides.

/// Five landmarks in pixels, in the 5-point model's order: one eye's two corners, the
/// other's, the base of the nose.
pub type Landmarks = [[f64; 2]; 5];

/// Where the nose sits across the eye line: the component of (nose − eye midpoint) along
/// the eye vector, in eye distances. None for a degenerate face (eyes on one point).
/// Invariant under any similarity of the image (a flat photo moved, rotated, scaled).
pub fn nose_offset(l: &Landmarks) -> Option<f64> {
    let mid = |a: [f64; 2], b: [f64; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let (e1, e2) = (mid(l[0], l[1]), mid(l[2], l[3]));
    let m = mid(e1, e2);
    let u = [e2[0] - e1[0], e2[1] - e1[1]];
    let d2 = u[0] * u[0] + u[1] * u[1];
    if d2 < 1.0 {
        return None;
    }
    let n = [l[4][0] - m[0], l[4][1] - m[1]];
    Some((n[0] * u[0] + n[1] * u[1]) / d2)
}

/// How far the nose moved across the eye line over the frames: the range of the
/// offsets, without the highest and the lowest once there are four or more (one frame
/// whose landmarks slipped must not make a photo a head; a head that turns shows it in
/// several frames).
pub fn turn(offsets: &[f64]) -> f64 {
    let mut o = offsets.to_vec();
    o.sort_by(f64::total_cmp);
    let o = if o.len() >= 4 {
        &o[1..o.len() - 1]
    } else {
        &o[..]
    };
    match (o.first(), o.last()) {
        (Some(lo), Some(hi)) => hi - lo,
        _ => 0.0,
    }
}

/// The guard's rule: a head turned at least `min_turn` (in eye distances) within the
/// decision's frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LivenessRule {
    pub min_turn: f64,
}

impl LivenessRule {
    /// Measured on dev (`cargo test --test liveness`, docs/book "Buddy punching"): still
    /// photos moved, turned, scaled or tilted between frames turn 0.008 (median), 0.040
    /// at most over 118 photos; photos of one person from other moments 0.118 (median),
    /// 69 % of them at 0.06 or more.
    pub const DEFAULT: LivenessRule = LivenessRule { min_turn: 0.06 };

    pub fn live(&self, offsets: &[f64]) -> bool {
        turn(offsets) >= self.min_turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A face: eye corners on a horizontal line, the nose `nose_x` across from the
    /// middle, then moved by a similarity (scale, angle, shift).
    fn face(nose_x: f64, scale: f64, angle: f64, dx: f64) -> Landmarks {
        let pts = [
            [-30.0, 0.0],
            [-10.0, 0.0],
            [10.0, 0.0],
            [30.0, 0.0],
            [nose_x, 25.0],
        ];
        let (s, c) = angle.sin_cos();
        pts.map(|[x, y]| {
            [
                scale * (c * x - s * y) + 200.0 + dx,
                scale * (s * x + c * y) + 150.0,
            ]
        })
    }

    #[test]
    fn a_flat_photo_moved_turned_or_scaled_keeps_its_offset() {
        let still = nose_offset(&face(3.0, 1.0, 0.0, 0.0)).unwrap();
        assert!((still - 0.075).abs() < 1e-9, "{still}");
        let moved: Vec<f64> = [(1.3, 0.3, 40.0), (0.7, -0.5, -25.0), (1.0, 1.2, 5.0)]
            .iter()
            .map(|&(s, a, dx)| nose_offset(&face(3.0, s, a, dx)).unwrap())
            .collect();
        assert!(turn(&moved) < 1e-9, "{moved:?}");
        assert!(!LivenessRule::DEFAULT.live(&[still, moved[0], moved[1]]));
    }

    #[test]
    fn a_head_turning_moves_the_nose_across_the_eye_line() {
        // The nose 3 px one way, then 2 px the other (40 px between the eyes' middles).
        let offsets = [
            nose_offset(&face(3.0, 1.0, 0.1, 0.0)).unwrap(),
            nose_offset(&face(-2.0, 1.1, 0.0, 10.0)).unwrap(),
        ];
        assert!((turn(&offsets) - 0.125).abs() < 1e-9);
        assert!(LivenessRule::DEFAULT.live(&offsets));
        assert!(!LivenessRule::DEFAULT.live(&[]));
        assert_eq!(nose_offset(&[[5.0, 5.0]; 5]), None);
    }
}
