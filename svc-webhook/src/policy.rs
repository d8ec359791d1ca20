//! Pure decisions of a delivery: the limits a call must keep, how long to wait before the next
//! attempt (exponential backoff with jitter, or the receiver's `Retry-After` when longer), which
//! answers are worth another attempt, and the notification signature.

use chrono::{DateTime, Utc};
use ferry_bus::messages::WebhookCall;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use std::time::Duration;

/// Longest URI, after secrets are substituted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most headers a call may set.
pub const MAX_HEADERS: usize = 50;
/// Longest header name.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
/// Longest header value.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most retries a call may ask for (`retryCount` above is capped).
pub const MAX_RETRIES: u32 = 10;
/// The methods a webhook may use.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// Headers Ferry sets itself; a call cannot override them.
pub const RESERVED_HEADERS: [&str; 5] = [
    "ferry-delivery-id",
    "ferry-attempt",
    "host",
    "content-length",
    "transfer-encoding",
];

/// The attempts a call gets: the first and its retries.
pub fn max_attempts(retry_count: u32) -> i32 {
    retry_count.min(MAX_RETRIES) as i32 + 1
}

/// Why a call (its secrets substituted) cannot be sent; checked before every attempt.
pub fn check_call(
    call: &WebhookCall,
    uri: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let method = call.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "method {:?} is not one of {}",
            call.method,
            METHODS.join(", ")
        ));
    }
    if uri.len() > MAX_URI_BYTES {
        return Err(format!("the URI is longer than {MAX_URI_BYTES} bytes"));
    }
    match http::Uri::try_from(uri) {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
        // The URI may hold a secret: never echo it.
        _ => return Err("the URI is not an absolute http or https URL".into()),
    }
    if headers.len() > MAX_HEADERS {
        return Err(format!("more than {MAX_HEADERS} headers"));
    }
    for (name, value) in headers {
        if name.len() > MAX_HEADER_NAME_BYTES || http::HeaderName::try_from(name.as_str()).is_err()
        {
            return Err(format!("header name {name:?} is not valid"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("header {name:?} is set by Ferry"));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES
            || http::HeaderValue::try_from(value.as_str()).is_err()
        {
            return Err(format!(
                "the value of header {name:?} is not valid (at most {MAX_HEADER_VALUE_BYTES} bytes, no line breaks)"
            ));
        }
    }
    if call.body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(format!("the body is larger than {MAX_BODY_BYTES} bytes"));
    }
    Ok(())
}

/// How retries are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first attempt (doubling after each next one).
    pub base: Duration,
    /// The longest computed wait.
    pub max: Duration,
    /// The longest `Retry-After` honoured.
    pub retry_after_max: Duration,
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based): `base × 2^(attempt-1)` capped at `max`, with
    /// "equal jitter" (a uniformly random point in its upper half, from `unit` in `[0, 1)`), or
    /// the receiver's `retry_after` when that is longer (capped at `retry_after_max`).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jittered = full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0);
        match retry_after {
            Some(r) => jittered.max(r.min(self.retry_after_max)),
            None => jittered,
        }
    }
}

/// `Retry-After` as seconds or an HTTP date, relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at: DateTime<Utc> = at.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Whether an answer with `status` may succeed when tried again: 5xx and 429.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The `Ferry-Signature` of a notification body sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the endpoint's key. The
/// timestamp lets receivers refuse replays of old deliveries.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},sha256={hex}")
}

/// The first `max` characters of an answer's body on one line, for a failure's reason.
pub fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, body: Option<usize>) -> WebhookCall {
        WebhookCall {
            method: method.into(),
            body: body.map(|n| "x".repeat(n)),
            ..WebhookCall::default()
        }
    }

    #[test]
    fn calls_outside_the_limits_are_refused_with_a_reason_that_shows_no_secret() {
        let ok = |c: &WebhookCall, uri: &str, h: &[(&str, &str)]| {
            let h: Vec<(String, String)> = h
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            check_call(c, uri, &h)
        };
        assert_eq!(
            ok(
                &call("post", Some(10)),
                "https://ci.example.com/hook",
                &[("X-Token", "a")]
            ),
            Ok(())
        );
        assert!(
            ok(&call("TRACE", None), "https://x.example", &[])
                .unwrap_err()
                .contains("TRACE")
        );
        let e = ok(&call("POST", None), "ftp://secret-token@x/", &[]).unwrap_err();
        assert!(!e.contains("secret-token"), "{e}");
        assert!(
            ok(
                &call("POST", None),
                &format!("https://x.example/{}", "a".repeat(MAX_URI_BYTES)),
                &[]
            )
            .is_err()
        );
        assert!(
            ok(
                &call("POST", Some(MAX_BODY_BYTES + 1)),
                "https://x.example",
                &[]
            )
            .is_err()
        );
        assert!(
            ok(
                &call("POST", None),
                "https://x.example",
                &[("Bad Name", "v")]
            )
            .is_err()
        );
        assert!(
            ok(
                &call("POST", None),
                "https://x.example",
                &[("X-A", "line\nbreak")]
            )
            .is_err()
        );
        assert!(
            ok(
                &call("POST", None),
                "https://x.example",
                &[("Ferry-Delivery-Id", "forged")]
            )
            .is_err()
        );
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-{i}"), "v".into()))
            .collect();
        assert!(check_call(&call("POST", None), "https://x.example", &many).is_err());
        assert_eq!(max_attempts(0), 1);
        assert_eq!(max_attempts(3), 4);
        assert_eq!(max_attempts(1000), MAX_RETRIES as i32 + 1);
    }

    #[test]
    fn backoff_doubles_with_jitter_caps_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            retry_after_max: Duration::from_secs(30),
        };
        assert_eq!(b.delay(1, None, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(30, None, 1.0), Duration::from_secs(1));
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(5)), 0.5),
            Duration::from_secs(5)
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(3600)), 0.5),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Utc::now();
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = now + chrono::Duration::seconds(120);
        let date = httpdate::fmt_http_date(later.into());
        h.insert(http::header::RETRY_AFTER, date.parse().unwrap());
        let d = retry_after(&h, now).unwrap();
        assert!(
            d <= Duration::from_secs(120) && d >= Duration::from_secs(118),
            "{d:?}"
        );
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
        assert!(retryable_status(503) && retryable_status(429));
        assert!(!retryable_status(404) && !retryable_status(200));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // Python: hmac.new(b"key", b"1.x", hashlib.sha256).hexdigest()
        let s = signature(b"key", 1, b"x");
        assert_eq!(
            s,
            "t=1,sha256=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
        assert_ne!(signature(b"key", 2, b"x"), s);
        assert_ne!(signature(b"other", 1, b"x"), s);
        assert_eq!(snippet(b"bad\nthings happened", 9), "bad thing…");
    }
}
