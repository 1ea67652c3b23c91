//! Slack request verification, before anything reads the body.
//!
//! Slack signs every request it sends: `X-Slack-Signature` is `v0=` and the
//! hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` keyed with
//! the app's signing secret. [`SlackRequest`] is an axum extractor that
//! checks size, timestamp and signature, so handlers only ever see verified
//! bytes. The headers and the timestamp are checked before the body is
//! read, and at most [`crate::http::MAX_BODY_BYTES`] of it. Written by hand because it is twenty lines over `hmac`/`sha2`; the
//! Slack SDK crates bring a second HTTP stack for it.

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

use super::payloads::Origin;
use crate::clock::Clock;
use crate::config::SlackSettings;

/// How far a request's timestamp may be from our clock, either way: Slack's
/// recommendation, which bounds how long a captured request can be replayed.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header carrying the Unix timestamp the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header Slack adds when it re-sends an event it thinks we missed.
pub const RETRY_HEADER: &str = "x-slack-retry-num";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingHeaders,
    BadTimestamp,
    Stale,
    BadSignature,
    TooLarge,
    Unreadable,
    /// Verified, but from a workspace or app other than the pinned one.
    ForeignOrigin,
}

impl Rejection {
    /// Stable label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingHeaders => "missing_headers",
            Self::BadTimestamp => "bad_timestamp",
            Self::Stale => "stale",
            Self::BadSignature => "bad_signature",
            Self::TooLarge => "too_large",
            Self::Unreadable => "unreadable",
            Self::ForeignOrigin => "foreign_origin",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable => StatusCode::BAD_REQUEST,
            Self::ForeignOrigin => StatusCode::FORBIDDEN,
            // Missing or wrong headers and stale timestamps: 401 (ARCHITECTURE.md, "The edge").
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::MissingHeaders => "missing Slack signature headers",
            Self::BadTimestamp => "malformed request timestamp",
            Self::Stale => "request timestamp too far from now",
            Self::BadSignature => "signature does not match",
            Self::TooLarge => "request body too large",
            Self::Unreadable => "request body unreadable",
            Self::ForeignOrigin => "request from another workspace or app",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        metrics::counter!("nudged_verification_failures_total", "reason" => self.reason())
            .increment(1);
        tracing::warn!(reason = self.reason(), "refused a Slack request");
        (self.status(), self.message()).into_response()
    }
}

/// The signature headers of a request whose timestamp is within
/// [`MAX_SKEW_SECONDS`] of now: what can be checked before reading the body.
#[derive(Debug)]
pub struct SignedHeaders<'a> {
    signature: &'a HeaderValue,
    timestamp: &'a str,
}

/// Checks the headers alone: both signature headers present, the timestamp
/// a number within [`MAX_SKEW_SECONDS`] of `now`. Pure, and cheap enough to
/// run before the body is read, so a request without them costs nothing.
pub fn check_headers(
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<SignedHeaders<'_>, Rejection> {
    let (Some(signature), Some(timestamp)) =
        (headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER))
    else {
        return Err(Rejection::MissingHeaders);
    };
    let timestamp = timestamp.to_str().map_err(|_| Rejection::BadTimestamp)?;
    let seconds: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
    // `abs_diff` cannot overflow: `now - seconds` can, and a wrapped
    // difference would pass as recent.
    if now.timestamp().abs_diff(seconds) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(Rejection::Stale);
    }
    Ok(SignedHeaders {
        signature,
        timestamp,
    })
}

impl SignedHeaders<'_> {
    /// Checks the signature over `body`.
    pub fn check_body(&self, secret: &SecretString, body: &[u8]) -> Result<(), Rejection> {
        let hex_signature = self
            .signature
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("v0="))
            .ok_or(Rejection::BadSignature)?;
        let expected = hex::decode(hex_signature).map_err(|_| Rejection::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| Rejection::BadSignature)?;
        mac.update(b"v0:");
        mac.update(self.timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| Rejection::BadSignature)
    }
}

/// Checks headers, timestamp and signature at once. Pure, so it is tested
/// without HTTP.
pub fn verify(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    check_headers(headers, now)?.check_body(secret, body)
}

/// Refuses a request whose workspace or app is not the one pinned by
/// `chat.slack.team_id` / `chat.slack.app_id`. A key left unset pins
/// nothing; a pinned key refuses a request that does not name its value.
/// Handlers call this right after parsing, before they change anything.
pub fn check_origin(slack: &SlackSettings, origin: Origin<'_>) -> Result<(), Rejection> {
    let allowed = |pinned: &Option<String>, sent: Option<&str>| {
        pinned.as_deref().is_none_or(|pinned| sent == Some(pinned))
    };
    if allowed(&slack.team_id, origin.team_id) && allowed(&slack.app_id, origin.app_id) {
        Ok(())
    } else {
        tracing::warn!(
            team_id = origin.team_id,
            app_id = origin.app_id,
            "refused a request from an unpinned workspace or app"
        );
        Err(Rejection::ForeignOrigin)
    }
}

/// Signs `body` as Slack would (for tests, benchmarks and the fake Slack).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// What verification needs from the app state.
#[derive(Clone)]
pub struct Verifier {
    pub secret: Option<SecretString>,
    pub clock: Arc<dyn Clock>,
    pub max_body: usize,
}

/// A request whose signature, timestamp and size were checked.
#[derive(Debug)]
pub struct SlackRequest {
    pub body: Bytes,
    /// Set when Slack is re-sending (`X-Slack-Retry-Num`).
    pub retry: Option<u32>,
}

impl<S> FromRequest<S> for SlackRequest
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Rejection> {
        let verifier = Verifier::from_ref(state);
        let (parts, body) = req.into_parts();
        // Everything that can be refused without the body is refused first,
        // before a byte of it is read: a request without a fresh signature,
        // or declaring a body that is too large, costs nothing.
        let signed = check_headers(&parts.headers, verifier.clock.now())?;
        let Some(secret) = &verifier.secret else {
            // No signing secret (console or webhook platform): nothing can
            // be verified, so nothing is accepted.
            return Err(Rejection::BadSignature);
        };
        let declared = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > verifier.max_body) {
            return Err(Rejection::TooLarge);
        }
        // A forged request with fresh headers costs at most `max_body`
        // bytes, read within the router's request timeout.
        let body = axum::body::to_bytes(body, verifier.max_body)
            .await
            .map_err(|e| {
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                {
                    Rejection::TooLarge
                } else {
                    Rejection::Unreadable
                }
            })?;
        signed.check_body(secret, &body)?;
        let retry = parts
            .headers
            .get(RETRY_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Self { body, retry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
        h
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let ts = 1_531_420_618;
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(SECRET, ts, body), signature);
        let secret = SecretString::from(SECRET);
        assert_eq!(
            verify(
                &secret,
                &headers(signature, &ts.to_string()),
                body,
                at(ts + 10)
            ),
            Ok(())
        );
    }

    #[test]
    fn tampering_staleness_and_missing_headers_are_refused() {
        let secret = SecretString::from(SECRET);
        let ts = 1_700_000_000;
        let good = sign(SECRET, ts, b"payload");
        let h = headers(&good, &ts.to_string());
        assert_eq!(
            verify(&secret, &h, b"payload!", at(ts)),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&SecretString::from("other"), &h, b"payload", at(ts)),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts + MAX_SKEW_SECONDS + 1)),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts - MAX_SKEW_SECONDS - 1)),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts + MAX_SKEW_SECONDS)),
            Ok(())
        );
        assert_eq!(
            verify(&secret, &HeaderMap::new(), b"payload", at(ts)),
            Err(Rejection::MissingHeaders)
        );
        let h = headers(&good, "yesterday");
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts)),
            Err(Rejection::BadTimestamp)
        );
        let h = headers("v1=abcd", &ts.to_string());
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts)),
            Err(Rejection::BadSignature)
        );
        let h = headers("v0=zz", &ts.to_string());
        assert_eq!(
            verify(&secret, &h, b"payload", at(ts)),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn a_timestamp_half_the_clock_away_is_stale_not_an_overflow() {
        // `now - ts` is 2^63 here: it overflows, and wrapped to i64::MIN
        // its `abs()` is negative, which once passed the window check.
        let secret = SecretString::from(SECRET);
        let now = 1_700_000_000;
        for ts in [now + i64::MIN, i64::MIN, i64::MAX] {
            let h = headers(&sign(SECRET, ts, b"payload"), &ts.to_string());
            assert_eq!(
                verify(&secret, &h, b"payload", at(now)),
                Err(Rejection::Stale),
                "{ts}"
            );
        }
    }

    #[test]
    fn the_headers_are_judged_without_the_body() {
        let ts = 1_700_000_000;
        let h = headers("v0=00", &ts.to_string());
        assert!(check_headers(&h, at(ts)).is_ok());
        assert_eq!(
            check_headers(&HeaderMap::new(), at(ts)).unwrap_err(),
            Rejection::MissingHeaders
        );
        assert_eq!(
            check_headers(&h, at(ts + MAX_SKEW_SECONDS + 1)).unwrap_err(),
            Rejection::Stale
        );
    }

    fn pinned(team: Option<&str>, app: Option<&str>) -> SlackSettings {
        SlackSettings {
            bot_token: None,
            signing_secret: None,
            api_base_url: "https://slack.com/api".into(),
            team_id: team.map(str::to_owned),
            app_id: app.map(str::to_owned),
            socket_mode: false,
            app_token: None,
        }
    }

    fn origin<'a>(team: Option<&'a str>, app: Option<&'a str>) -> Origin<'a> {
        Origin {
            team_id: team,
            app_id: app,
        }
    }

    #[test]
    fn only_the_pinned_workspace_and_app_pass() {
        let both = pinned(Some("T1"), Some("A1"));
        assert_eq!(check_origin(&both, origin(Some("T1"), Some("A1"))), Ok(()));
        for (team, app) in [
            (Some("T2"), Some("A1")),
            (Some("T1"), Some("A2")),
            (None, Some("A1")),
            (Some("T1"), None),
            (None, None),
        ] {
            assert_eq!(
                check_origin(&both, origin(team, app)),
                Err(Rejection::ForeignOrigin),
                "{team:?} {app:?}"
            );
        }
        let team_only = pinned(Some("T1"), None);
        assert_eq!(
            check_origin(&team_only, origin(Some("T1"), Some("A9"))),
            Ok(())
        );
        assert_eq!(
            check_origin(&team_only, origin(Some("T2"), Some("A9"))),
            Err(Rejection::ForeignOrigin)
        );
        let open = pinned(None, None);
        assert_eq!(check_origin(&open, origin(None, None)), Ok(()));
        assert_eq!(check_origin(&open, origin(Some("T9"), Some("A9"))), Ok(()));
    }
}
