//! Browser sessions for the admin page. A browser cannot hold an API key safely (a page
//! anyone on the network loads must not embed one, and script-readable storage leaks to
//! any injected script), so `POST /session` takes the admin key once and answers with an
//! `HttpOnly; SameSite=Strict` cookie and a CSRF token. Requests carrying the cookie act
//! with the admin key; those that change something must also echo the token in
//! `X-CSRF-Token` (a page on another site can make the browser send the cookie, never
//! read the token). Sessions live in memory: a restart signs everyone out; a session
//! lasts while the key it was opened with is configured (a rotation on SIGHUP ends it),
//! and never longer than its absolute lifetime. Sign-in failures are rationed per peer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use hyper::header::COOKIE;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use attendance_core::ration::Failures;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "att_session";
/// The header a changing request echoes the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Open sessions beyond this many: the oldest goes (a login loop cannot fill memory).
const MAX_SESSIONS: usize = 64;
/// Failed sign-ins one peer may make within [`SIGN_IN_WINDOW`] (typos, a pasted key
/// with a stray character); then 429 until the window moves on.
pub(crate) const SIGN_IN_FAILURES: usize = 10;
const SIGN_IN_WINDOW: Duration = Duration::from_secs(600);

/// Why a session does not let a request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionDenied {
    /// No session cookie, or one that expired or was never issued.
    NoSession,
    /// A changing request without the session's CSRF token.
    Csrf,
}

#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
    /// Past this it ends, however busy.
    ends: Instant,
    /// SHA-256 of the admin key it was opened with.
    key: [u8; 32],
}

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    /// Without a request.
    pub(crate) idle: Duration,
    /// In all.
    pub(crate) max: Duration,
}

/// The open sessions, by SHA-256 of their token (a memory dump holds no usable token).
#[derive(Debug)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    lifetimes: Mutex<Lifetimes>,
    sign_ins: Mutex<Failures<IpAddr>>,
    rng: SystemRandom,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn new(lifetimes: Lifetimes) -> Sessions {
        Sessions {
            open: Mutex::default(),
            lifetimes: Mutex::new(lifetimes),
            sign_ins: Mutex::new(Failures::new(SIGN_IN_WINDOW)),
            rng: SystemRandom::new(),
        }
    }

    fn lifetimes(&self) -> Lifetimes {
        *self.lifetimes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cookie's `Max-Age`: the longest a new session can live.
    pub(crate) fn cookie_age(&self) -> Duration {
        let l = self.lifetimes();
        l.idle.min(l.max)
    }

    /// New keys and lifetimes (SIGHUP): sessions opened with a key no longer configured
    /// end now; the others keep going under the new lifetimes.
    pub(crate) fn rekey(&self, lifetimes: Lifetimes, still_admin: impl Fn(&[u8; 32]) -> bool) {
        *self.lifetimes.lock().unwrap_or_else(|p| p.into_inner()) = lifetimes;
        self.lock().retain(|_, s| still_admin(&s.key));
    }

    /// Whether `peer` may try to sign in now; else how long until it may.
    pub(crate) fn may_sign_in(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut f = self.sign_ins.lock().unwrap_or_else(|p| p.into_inner());
        if f.count(&peer, now) < SIGN_IN_FAILURES {
            Ok(())
        } else {
            Err(f.window())
        }
    }

    /// A sign-in from `peer` failed.
    pub(crate) fn sign_in_failed(&self, peer: IpAddr, now: Instant) {
        self.sign_ins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fail(peer, now);
    }

    fn random_hex(&self) -> Option<String> {
        let mut b = [0u8; 32];
        self.rng.fill(&mut b).ok()?;
        Some(hex::encode(b))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session opened with the admin key of SHA-256 `key`: its token (for the
    /// cookie) and CSRF token. None only when the system's random source fails.
    pub(crate) fn open(&self, key: [u8; 32], now: Instant) -> Option<(String, String)> {
        let (token, csrf) = (self.random_hex()?, self.random_hex()?);
        let l = self.lifetimes();
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now && s.ends > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(
            digest(&token),
            Session {
                csrf: csrf.clone(),
                expires: now + l.idle,
                ends: now + l.max,
                key,
            },
        );
        Some((token, csrf))
    }

    /// Checks a request's session (and, if it changes something, its CSRF token),
    /// extending it; answers the session's CSRF token.
    pub(crate) fn check(
        &self,
        token: Option<&str>,
        csrf: Option<&str>,
        changes: bool,
        now: Instant,
    ) -> Result<String, SessionDenied> {
        let token = token.ok_or(SessionDenied::NoSession)?;
        let idle = self.lifetimes().idle;
        let mut open = self.lock();
        let key = digest(token);
        let s = open
            .get_mut(&key)
            .filter(|s| s.expires > now && s.ends > now)
            .ok_or(SessionDenied::NoSession)?;
        if changes {
            let given = csrf.unwrap_or("").as_bytes();
            if !bool::from(given.ct_eq(s.csrf.as_bytes())) {
                return Err(SessionDenied::Csrf);
            }
        }
        s.expires = now + idle;
        Ok(s.csrf.clone())
    }

    /// Signs a session out.
    pub(crate) fn close(&self, token: &str) {
        self.lock().remove(&digest(token));
    }
}

/// The session token a request's `Cookie` headers carry.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE_NAME && !v.is_empty()).then_some(v)
        })
}

/// The `Set-Cookie` value for a session (`secure`: served over HTTPS).
pub(crate) fn set_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [1; 32];

    fn sessions(idle: u64, max: u64) -> Sessions {
        Sessions::new(Lifetimes {
            idle: Duration::from_secs(idle),
            max: Duration::from_secs(max),
        })
    }

    #[test]
    fn a_session_lets_reads_through_and_changes_only_with_its_token() {
        let s = sessions(60, 3600);
        let now = Instant::now();
        let (token, csrf) = s.open(KEY, now).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, csrf);
        assert_eq!(s.check(Some(&token), None, false, now), Ok(csrf.clone()));
        assert_eq!(
            s.check(Some(&token), None, true, now),
            Err(SessionDenied::Csrf)
        );
        assert_eq!(
            s.check(Some(&token), Some("0000"), true, now),
            Err(SessionDenied::Csrf)
        );
        assert!(s.check(Some(&token), Some(&csrf), true, now).is_ok());
        // Another session's token is not this one's.
        let (_, other_csrf) = s.open(KEY, now).unwrap();
        assert_eq!(
            s.check(Some(&token), Some(&other_csrf), true, now),
            Err(SessionDenied::Csrf)
        );
        assert_eq!(
            s.check(Some("forged"), None, false, now),
            Err(SessionDenied::NoSession)
        );
        assert_eq!(
            s.check(None, None, false, now),
            Err(SessionDenied::NoSession)
        );
    }

    #[test]
    fn sessions_end_when_idle_or_closed_and_are_bounded() {
        let s = sessions(60, 3600);
        let t0 = Instant::now();
        let (token, _) = s.open(KEY, t0).unwrap();
        // Used at 50 s: extended to 110 s.
        assert!(
            s.check(Some(&token), None, false, t0 + Duration::from_secs(50))
                .is_ok()
        );
        assert!(
            s.check(Some(&token), None, false, t0 + Duration::from_secs(100))
                .is_ok()
        );
        assert_eq!(
            s.check(Some(&token), None, false, t0 + Duration::from_secs(161)),
            Err(SessionDenied::NoSession)
        );
        let (token, _) = s.open(KEY, t0).unwrap();
        s.close(&token);
        assert_eq!(
            s.check(Some(&token), None, false, t0),
            Err(SessionDenied::NoSession)
        );
        let first = s.open(KEY, t0).unwrap().0;
        for i in 0..MAX_SESSIONS {
            s.open(KEY, t0 + Duration::from_millis(i as u64 + 1))
                .unwrap();
        }
        assert!(s.lock().len() <= MAX_SESSIONS);
        assert_eq!(
            s.check(Some(&first), None, false, t0),
            Err(SessionDenied::NoSession)
        );
    }

    #[test]
    fn a_session_ends_at_its_absolute_lifetime_and_with_its_key() {
        let s = sessions(60, 300);
        let t0 = Instant::now();
        let (token, _) = s.open(KEY, t0).unwrap();
        let (other, _) = s.open([2; 32], t0).unwrap();
        // Busy every 50 s: still, it ends at 300 s.
        for i in 1..6 {
            assert!(
                s.check(Some(&token), None, false, t0 + Duration::from_secs(50 * i))
                    .is_ok()
            );
        }
        assert_eq!(
            s.check(Some(&token), None, false, t0 + Duration::from_secs(301)),
            Err(SessionDenied::NoSession)
        );
        assert_eq!(s.cookie_age(), Duration::from_secs(60));
        // Key 2 rotated out: its session ends, key 1's would not.
        let (kept, _) = s.open(KEY, t0).unwrap();
        s.rekey(
            Lifetimes {
                idle: Duration::from_secs(60),
                max: Duration::from_secs(300),
            },
            |k| *k == KEY,
        );
        assert_eq!(
            s.check(Some(&other), None, false, t0),
            Err(SessionDenied::NoSession)
        );
        assert!(s.check(Some(&kept), None, false, t0).is_ok());
    }

    #[test]
    fn sign_in_failures_are_rationed_per_peer() {
        let s = sessions(60, 300);
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..SIGN_IN_FAILURES {
            assert!(s.may_sign_in(a, t0).is_ok());
            s.sign_in_failed(a, t0);
        }
        assert_eq!(s.may_sign_in(a, t0), Err(SIGN_IN_WINDOW));
        assert!(s.may_sign_in(b, t0).is_ok(), "another peer is not held up");
        assert!(s.may_sign_in(a, t0 + SIGN_IN_WINDOW).is_ok());
    }

    #[test]
    fn the_cookie_is_http_only_same_site_and_read_back() {
        let c = set_cookie("abc", Duration::from_secs(3600), true);
        assert_eq!(
            c,
            "att_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
        );
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "theme=dark; att_session=abc".parse().unwrap());
        assert_eq!(cookie_token(&h), Some("abc"));
        h.insert(COOKIE, "att_session=".parse().unwrap());
        assert_eq!(cookie_token(&h), None);
    }
}
