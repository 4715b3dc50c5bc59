//! Reading the daemon's `/metrics` in tests.

use hyper::StatusCode;

/// The value of one series of a scrape, labelled or not (a counter not yet created is
/// 0; a scrape that fails fails the test).
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| {
            s.strip_prefix(name).is_some_and(|rest| {
                (rest.is_empty() || rest.starts_with('{'))
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
        })
        .map_or(0.0, |(_, v)| v.parse().expect("a number"))
}

/// `GET /metrics`, which must answer.
pub async fn scrape(c: &super::daemon::Client) -> String {
    let r = c.get("/metrics").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    String::from_utf8(r.body.to_vec()).expect("UTF-8")
}
