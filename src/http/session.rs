//! Browser sessions for the admin page. A browser cannot hold an API key safely (a page
//! anyone on the network loads must not embed one, and script-readable storage leaks to
//! any injected script), so `POST /session` takes the admin key once and answers with an
//! `HttpOnly; SameSite=Strict` cookie and a CSRF token. Requests carrying the cookie act
//! with the admin key; those that change something must also echo the token in
//! `X-CSRF-Token` (a page on another site can make the browser send the cookie, never
//! read the token). Sessions live in memory: a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use hyper::header::COOKIE;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "att_session";
/// The header a changing request echoes the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Open sessions beyond this many: the oldest goes (a login loop cannot fill memory).
const MAX_SESSIONS: usize = 64;

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
}

/// The open sessions, by SHA-256 of their token (a memory dump holds no usable token).
#[derive(Debug)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    rng: SystemRandom,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Sessions that end after `idle` without a request.
    pub(crate) fn new(idle: Duration) -> Sessions {
        Sessions {
            open: Mutex::default(),
            idle,
            rng: SystemRandom::new(),
        }
    }

    pub(crate) fn idle(&self) -> Duration {
        self.idle
    }

    fn random_hex(&self) -> Option<String> {
        let mut b = [0u8; 32];
        self.rng.fill(&mut b).ok()?;
        Some(hex::encode(b))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session: its token (for the cookie) and CSRF token. None only when the
    /// system's random source fails.
    pub(crate) fn open(&self, now: Instant) -> Option<(String, String)> {
        let (token, csrf) = (self.random_hex()?, self.random_hex()?);
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(
            digest(&token),
            Session {
                csrf: csrf.clone(),
                expires: now + self.idle,
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
        let mut open = self.lock();
        let key = digest(token);
        let s = open
            .get_mut(&key)
            .filter(|s| s.expires > now)
            .ok_or(SessionDenied::NoSession)?;
        if changes {
            let given = csrf.unwrap_or("").as_bytes();
            if !bool::from(given.ct_eq(s.csrf.as_bytes())) {
                return Err(SessionDenied::Csrf);
            }
        }
        s.expires = now + self.idle;
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

    #[test]
    fn a_session_lets_reads_through_and_changes_only_with_its_token() {
        let s = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let (token, csrf) = s.open(now).unwrap();
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
        let (_, other_csrf) = s.open(now).unwrap();
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
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (token, _) = s.open(t0).unwrap();
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
        let (token, _) = s.open(t0).unwrap();
        s.close(&token);
        assert_eq!(
            s.check(Some(&token), None, false, t0),
            Err(SessionDenied::NoSession)
        );
        let first = s.open(t0).unwrap().0;
        for i in 0..MAX_SESSIONS {
            s.open(t0 + Duration::from_millis(i as u64 + 1)).unwrap();
        }
        assert!(s.lock().len() <= MAX_SESSIONS);
        assert_eq!(
            s.check(Some(&first), None, false, t0),
            Err(SessionDenied::NoSession)
        );
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
