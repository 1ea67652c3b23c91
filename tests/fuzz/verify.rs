//! Target: Slack request verification ([`verify`], the pure check inside the
//! `SlackRequest` extractor). Correctly signed random bodies verify within
//! the allowed skew; any change to body, secret, signature or timestamp is
//! refused, and random headers never verify.

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use nudged::http::verify::{
    MAX_SKEW_SECONDS, Rejection, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify,
};
use proptest::prelude::*;
use secrecy::SecretString;

use crate::support::Target;

/// The verifier's clock in the structured cases: mid-2027.
const NOW: i64 = 1_800_000_000;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a representable instant")
}

fn headers(signature: Option<&[u8]>, timestamp: Option<&[u8]>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [(SIGNATURE_HEADER, signature), (TIMESTAMP_HEADER, timestamp)] {
        // Bytes no HTTP stack would deliver as a header value are left out:
        // the extractor never sees them.
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    headers
}

/// How a correctly signed request is changed before it is checked.
#[derive(Debug, Clone)]
enum Change {
    /// Sent as signed.
    None,
    /// The signature's hex in upper case: the same bytes, still valid.
    UpperHex,
    /// One body byte changed.
    Body(prop::sample::Index, u8),
    /// A byte appended to or removed from the body.
    BodyLength(bool),
    /// Verified with another secret.
    Secret(String),
    /// One hex digit of the signature changed to another.
    SignatureDigit(prop::sample::Index, u8),
    /// The signature cut short.
    SignatureCut(prop::sample::Index),
    /// `v1=` or no prefix instead of `v0=`.
    SignaturePrefix(&'static str),
    /// The timestamp header moved by this many seconds.
    Timestamp(i64),
    /// The same number written differently (`+`, a leading zero): the
    /// signature covers the text as sent, so it no longer matches.
    TimestampText(&'static str),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::None),
        1 => Just(Change::UpperHex),
        2 => (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, b)| Change::Body(i, b)),
        1 => any::<bool>().prop_map(Change::BodyLength),
        2 => ".{0,40}".prop_map(Change::Secret),
        2 => (any::<prop::sample::Index>(), 1u8..16).prop_map(|(i, d)| Change::SignatureDigit(i, d)),
        1 => any::<prop::sample::Index>().prop_map(Change::SignatureCut),
        1 => prop::sample::select(&["v1=", "", "V0=", "v0:", " v0="][..]).prop_map(Change::SignaturePrefix),
        2 => (-1_000i64..=1_000).prop_filter("a real move", |d| *d != 0).prop_map(Change::Timestamp),
        1 => prop::sample::select(&["+", "0", "00"][..]).prop_map(Change::TimestampText),
    ]
}

/// Whether two secrets are one HMAC key: HMAC pads a key shorter than its
/// block (64 bytes for SHA-256) with zero bytes, so `""` and `"\0"` sign
/// alike.
fn same_hmac_key(a: &str, b: &str) -> bool {
    if a.len() <= 64 && b.len() <= 64 {
        a.trim_end_matches('\0') == b.trim_end_matches('\0')
    } else {
        a == b
    }
}

#[test]
fn signed_bodies_verify_and_every_change_is_refused() {
    let target = Target {
        name: "verify/signed",
        regressions: "tests/fuzz/regressions/verify-signed.txt",
        per_mille: 1000,
    };
    let inputs = (
        ".{0,48}",
        prop::collection::vec(any::<u8>(), 0..1024),
        -2 * MAX_SKEW_SECONDS..=2 * MAX_SKEW_SECONDS,
        change(),
    );
    target.run(inputs, |(secret, mut body, skew, change)| {
        let ts = NOW - skew;
        let mut signature = sign(&secret, ts, &body);
        let mut timestamp = ts.to_string();
        let mut verify_secret = secret.clone();
        let mut header_ts = ts;
        let expect_valid = match &change {
            Change::None => true,
            Change::UpperHex => {
                signature = format!("v0={}", signature[3..].to_uppercase());
                true
            }
            Change::Body(i, bits) => {
                if body.is_empty() {
                    body.push(*bits);
                } else {
                    let at = i.index(body.len());
                    body[at] ^= bits;
                }
                false
            }
            Change::BodyLength(longer) => {
                if *longer || body.is_empty() {
                    body.push(b'&');
                } else {
                    body.pop();
                }
                false
            }
            Change::Secret(other) => {
                verify_secret = other.clone();
                same_hmac_key(other, &secret)
            }
            Change::SignatureDigit(i, delta) => {
                let mut hex: Vec<u8> = signature[3..].bytes().collect();
                let at = i.index(hex.len());
                let digit =
                    u8::from_str_radix(std::str::from_utf8(&hex[at..=at]).unwrap(), 16).unwrap();
                hex[at] = b"0123456789abcdef"[usize::from((digit + delta) % 16)];
                signature = format!("v0={}", String::from_utf8(hex).unwrap());
                false
            }
            Change::SignatureCut(i) => {
                signature.truncate(i.index(signature.len()));
                false
            }
            Change::SignaturePrefix(prefix) => {
                signature = format!("{prefix}{}", &signature[3..]);
                false
            }
            Change::Timestamp(delta) => {
                header_ts = ts + delta;
                timestamp = header_ts.to_string();
                false
            }
            Change::TimestampText(prefix) => {
                timestamp = format!("{prefix}{ts}");
                false
            }
        };
        let h = headers(Some(signature.as_bytes()), Some(timestamp.as_bytes()));
        let result = verify(&SecretString::from(verify_secret), &h, &body, at(NOW));
        let stale = (NOW - header_ts).abs() > MAX_SKEW_SECONDS;
        let expected = if stale {
            Err(Rejection::Stale)
        } else if expect_valid {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        };
        prop_assert_eq!(result, expected, "{:?} at skew {}", change, skew);
        Ok(())
    });
}

/// A timestamp header: mostly digits near the clock, some far away, some
/// not a number at all.
fn timestamp_header() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        4 => (-1_000i64..=1_000).prop_map(|d| Some((NOW + d).to_string().into_bytes())),
        2 => "-?[0-9]{1,18}".prop_map(|s| Some(s.into_bytes())),
        // So far out that `now - timestamp` does not fit an i64.
        1 => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            i64::MIN..i64::MIN / 2,
            i64::MAX / 2..=i64::MAX,
        ]
        .prop_map(|t| Some(t.to_string().into_bytes())),
        2 => "[ +0-9a-fx.eE_-]{0,24}".prop_map(|s| Some(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..32).prop_map(Some),
    ]
}

/// A signature header: `v0=` and 64 hex digits, near misses, or any bytes.
fn signature_header() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        4 => "v0=[0-9a-f]{64}".prop_map(|s| Some(s.into_bytes())),
        2 => "(v0=|v1=|v0|)[0-9a-fA-FxyZ ]{0,70}".prop_map(|s| Some(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Some),
    ]
}

#[test]
fn random_headers_never_verify() {
    let target = Target {
        name: "verify/random",
        regressions: "tests/fuzz/regressions/verify-random.txt",
        per_mille: 1000,
    };
    let inputs = (
        ".{0,32}",
        signature_header(),
        timestamp_header(),
        prop::collection::vec(any::<u8>(), 0..256),
        // Any instant chrono can hold is a possible clock reading.
        prop_oneof![
            4 => Just(NOW),
            1 => -8_000_000_000_000i64..8_000_000_000_000,
        ],
    );
    target.run(inputs, |(secret, signature, timestamp, body, now)| {
        let h = headers(signature.as_deref(), timestamp.as_deref());
        let result = verify(&SecretString::from(secret), &h, &body, at(now));
        prop_assert_ne!(result, Ok(()));
        if !(h.contains_key(SIGNATURE_HEADER) && h.contains_key(TIMESTAMP_HEADER)) {
            prop_assert_eq!(result, Err(Rejection::MissingHeaders));
        } else {
            let number = h[TIMESTAMP_HEADER]
                .to_str()
                .ok()
                .and_then(|t| t.parse::<i64>().ok());
            match number {
                None => prop_assert_eq!(result, Err(Rejection::BadTimestamp)),
                Some(ts) if now.abs_diff(ts) > MAX_SKEW_SECONDS.unsigned_abs() => {
                    prop_assert_eq!(result, Err(Rejection::Stale))
                }
                Some(_) => prop_assert_eq!(result, Err(Rejection::BadSignature)),
            }
        }
        Ok(())
    });
}
