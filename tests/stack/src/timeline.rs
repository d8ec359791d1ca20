//! Reading rollouts off the simulators' journals: for each application, when each of its steps
//! could proceed and when that step's first cluster write reached the cluster.
//!
//! A rollout's first step may proceed when svc-api accepted the deployment; every later one when
//! the Pods the previous step started turned Ready (Ferry waits for them). So, per application
//! and in time order: the first write after the start is the first step's, and the first write
//! after one or more Pods turned Ready is the next step's, gated by the last of those Pods.
//! Applications are named `s` and five digits (`s00042`); the name is found in request paths
//! (object names, label selectors) and in Pod names.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What happened to an application, as the cluster saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A write request (POST, PUT, PATCH, DELETE) about the application arrived.
    Write,
    /// One of its Pods turned Ready.
    Ready,
}

/// The gaps of one rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gaps {
    /// From the start to the first write (`None`: nothing was written).
    pub first: Option<Duration>,
    /// From the last Pod turning Ready to the next write, for every step gated by readiness.
    pub readiness: Vec<Duration>,
}

/// The gaps of one application's events (in time order) after `start`; earlier events are
/// ignored, as are Pods turning Ready before the first write (what ran before).
pub fn gaps(start: Instant, events: &[(Instant, Seen)]) -> Gaps {
    let mut out = Gaps::default();
    let mut last_ready: Option<Instant> = None;
    for &(at, seen) in events.iter().filter(|(at, _)| *at >= start) {
        match seen {
            Seen::Ready if out.first.is_some() => last_ready = Some(at),
            Seen::Ready => {}
            Seen::Write => match (out.first, last_ready.take()) {
                (None, _) => out.first = Some(at - start),
                (Some(_), Some(ready)) => out.readiness.push(at - ready),
                (Some(_), None) => {}
            },
        }
    }
    out
}

/// The application (its number) named in `text`: `s` and five digits, with no letter or digit
/// on either side. Percent-encoded text is decoded first (label selectors arrive encoded).
pub fn application_in(text: &str) -> Option<u32> {
    let decoded = percent_decode(text);
    let bytes = decoded.as_bytes();
    let alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    (0..bytes.len()).find_map(|i| {
        let digits = bytes.get(i + 1..i + 6)?;
        let bounded = (i == 0 || !alnum(i - 1)) && !alnum(i + 6);
        (bytes[i] == b's' && bounded && digits.iter().all(u8::is_ascii_digit))
            .then(|| decoded[i + 1..i + 6].parse().ok())
            .flatten()
    })
}

/// `%XX` sequences decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The journal's entries sorted into each application's events (in time order).
pub fn by_application(
    entries: impl IntoIterator<Item = ferry_kube_sim::journal::Entry>,
) -> HashMap<u32, Vec<(Instant, Seen)>> {
    use ferry_kube_sim::journal::Event;
    let mut out: HashMap<u32, Vec<(Instant, Seen)>> = HashMap::new();
    for entry in entries {
        let (seen, text) = match &entry.event {
            e @ Event::Request { path, .. } if e.is_write() => (Seen::Write, path.as_str()),
            Event::PodReady { name, .. } => (Seen::Ready, name.as_str()),
            Event::Request { .. } => continue,
        };
        if let Some(app) = application_in(text) {
            out.entry(app).or_default().push((entry.at, seen));
        }
    }
    for events in out.values_mut() {
        events.sort_by_key(|(at, _)| *at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steps_are_gated_by_the_start_then_by_the_last_ready_pod() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + ms(n);
        let events = [
            (at(0), Seen::Ready),  // before the start: what ran before
            (at(20), Seen::Ready), // after the start, before the first write: still the old pods
            (at(30), Seen::Write), // first step
            (at(31), Seen::Write), // same step
            (at(300), Seen::Ready),
            (at(450), Seen::Ready), // the last pod of the step
            (at(460), Seen::Write), // next step: 10 ms after readiness
            (at(470), Seen::Write),
            (at(900), Seen::Ready),
            (at(925), Seen::Write), // 25 ms
        ];
        let gaps = gaps(at(10), &events);
        assert_eq!(gaps.first, Some(ms(20)));
        assert_eq!(gaps.readiness, vec![ms(10), ms(25)]);
    }

    #[test]
    fn a_rollout_that_wrote_nothing_has_no_gaps() {
        let t0 = Instant::now();
        assert_eq!(gaps(t0, &[(t0, Seen::Ready)]), Gaps::default());
    }

    #[test]
    fn applications_are_found_in_names_and_encoded_selectors() {
        assert_eq!(
            application_in("/apis/apps/v1/namespaces/load/replicasets/s00042-0a1b2c3d4e"),
            Some(42)
        );
        assert_eq!(
            application_in(
                "/apis/apps/v1/namespaces/load/replicasets?labelSelector=ferry.dev%2Fapplication%3Ds01234%2Cx%3Dy"
            ),
            Some(1234)
        );
        assert_eq!(application_in("s00007-5f9c8d7b6a-x2b4c"), Some(7));
        assert_eq!(application_in("/api/v1/namespaces/load/pods/xs00042"), None);
        assert_eq!(application_in("s000421"), None);
        assert_eq!(application_in("s0004"), None);
        assert_eq!(application_in("/api/v1/namespaces/load"), None);
    }
}
