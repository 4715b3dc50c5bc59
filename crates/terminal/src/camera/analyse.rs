//! The analysis task: the latest frame through the face pipeline, at a rate that follows
//! whether anybody is in view or waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use attendance_core::shutdown::Shutdown;
use attendance_face::Framing;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::watch;

use super::scene::Thumbnail;
use super::{Camera, Detection, LiveAnalysis};

/// The frame behind the last detection (full or tracked), and when the last full one
/// ran.
struct Reference {
    thumbnail: Arc<Thumbnail>,
    full_at: Instant,
}

/// Analyses the latest frame at `analysis_fps` (`idle_analysis_fps` while nobody is in
/// view and nobody waits), on the blocking pool, up to `analysis_threads` frames at once,
/// publishing in frame order and skipping ticks rather than queueing; embeds faces only
/// while an [`super::AnalysisWindow`] is open. While nobody waits, a frame that shows the scene
/// of the last detection carries its result over, and a face in view is looked for only
/// near where it was, for at most `redetect_ms` after a full detection while a face is
/// in view: an empty doorway or a person standing costs a decode and a thumbnail a
/// frame, a person moving a small scan.
pub(super) async fn run(
    camera: Arc<Camera>,
    out: watch::Sender<Option<Arc<LiveAnalysis>>>,
    mut stop: Shutdown,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(camera.settings.analysis_fps.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let s = &camera.settings;
    let idle_every = (s.analysis_fps / s.idle_analysis_fps.max(1)).max(1);
    let redetect = Duration::from_millis(s.redetect_ms);
    let threads = s.analysis_threads();
    let (mut last_seq, mut skipped) = (0, 0);
    let mut reference: Option<Reference> = None;
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let done: Result<Option<(LiveAnalysis, Option<Thumbnail>)>, _> = done;
                if let Ok(Some((a, thumbnail))) = done {
                    if let Some(thumbnail) = thumbnail {
                        let full_at = match (&reference, a.detection) {
                            (Some(r), Detection::Tracked) => r.full_at,
                            _ => a.at,
                        };
                        reference = Some(Reference {
                            thumbnail: Arc::new(thumbnail),
                            full_at,
                        });
                    }
                    let _ = out.send(Some(Arc::new(a)));
                }
                continue;
            }
            _ = stop.recv() => return,
        }
        if in_flight.len() >= threads {
            continue;
        }
        let Some(frame) = camera.latest_frame() else {
            continue;
        };
        if frame.seq == last_seq {
            continue;
        }
        let waiting = camera.waiting.load(Ordering::SeqCst) > 0;
        let latest = camera.latest_analysis();
        let in_view = latest.as_ref().is_none_or(|a| !a.faces.is_empty());
        if !due(waiting || in_view, &mut skipped, idle_every) {
            continue;
        }
        // The frames that came and went since the last one analysed.
        let passed_over = frame.seq.saturating_sub(last_seq + 1);
        last_seq = frame.seq;
        // What a frame may build on instead of a full detection: never while a
        // decision waits (it needs embedded frames, and every face in them), never
        // while an analysis in flight may bring something newer, and with a face in
        // view never `redetect` after a full detection (an empty scene that has not
        // changed has nobody new in it).
        let before = match (&reference, latest) {
            (Some(r), Some(a))
                if !waiting
                    && in_flight.is_empty()
                    && (a.faces.is_empty() || r.full_at.elapsed() < redetect) =>
            {
                Some((r.thumbnail.clone(), a))
            }
            _ => None,
        };
        let pipeline = camera.pipeline.clone();
        let embed = waiting;
        let metrics = camera.metrics.clone();
        in_flight.push_back(tokio::task::spawn_blocking(move || {
            // Decoded here, off the runtime; a frame that does not decode is dropped.
            let Some(rgb) = frame.rgb() else {
                metrics.frame_dropped();
                return None;
            };
            metrics.frame_analysed(passed_over);
            let thumbnail = Thumbnail::of(rgb);
            if let Some((scene, a)) = before {
                if thumbnail.same_scene(&scene) {
                    return Some((a.carried_to(frame.seq), None));
                }
                if let [seen] = a.faces[..]
                    && let Some(t) = pipeline.analyse_near(rgb, Framing::Guided, &seen)
                {
                    let live = LiveAnalysis::of(frame.seq, t, Detection::Tracked, None);
                    return Some((live, Some(thumbnail)));
                }
            }
            let a = pipeline.analyse(rgb, Framing::Guided);
            let embedder = embed.then(|| pipeline.embedder().as_ref());
            let live = LiveAnalysis::of(frame.seq, a, Detection::Full, embedder);
            Some((live, Some(thumbnail)))
        }));
    }
}

/// Whether this analysis tick runs: always when `busy` (a face in view or somebody
/// waiting), else every `idle_every`-th tick, counted in `skipped`.
pub(super) fn due(busy: bool, skipped: &mut u32, idle_every: u32) -> bool {
    if busy || *skipped + 1 >= idle_every {
        *skipped = 0;
        true
    } else {
        *skipped += 1;
        false
    }
}
