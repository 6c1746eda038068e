//! The pure core of the probes (source stage of the agent's flow): what one round of attempts
//! says (loss, latency, up), whether an HTTP status is a success, and whether this process may
//! open unprivileged ICMP sockets. The task in [`super`] makes the attempts and feeds them here.

use super::config::ProbeKind;
use crate::source::sample;
use faultline_wire::{Sample, SampleKind};

/// 1 when at least one attempt of the round succeeded, 0 when all failed.
pub const METRIC_UP: &str = "faultline_probe_up";
/// Share of the round's attempts that failed (0 to 1).
pub const METRIC_LOSS: &str = "faultline_probe_loss_ratio";
/// Round-trip (icmp), connect (tcp) or response (http) time of the successful attempts, by
/// `stat` (min, avg, max); absent when none succeeded.
pub const METRIC_LATENCY: &str = "faultline_probe_latency_seconds";
/// Last HTTP status received (http probes).
pub const METRIC_HTTP_STATUS: &str = "faultline_probe_http_status";
/// Counter of failed attempts by `kind` (resolve, timeout, refused, unreachable, status, tls,
/// network).
pub const METRIC_ERRORS: &str = "faultline_probe_errors";

/// The help line of each probe family, sent with the samples ([`crate::help`]).
pub const HELP: [(&str, &str); 5] = [
    (
        METRIC_UP,
        "1 when at least one attempt of the probe's round succeeded, 0 when all failed.",
    ),
    (
        METRIC_LOSS,
        "Share of the probe round's attempts that failed (0 to 1).",
    ),
    (
        METRIC_LATENCY,
        "Round-trip (icmp), connect (tcp) or response (http) time of the round's successful attempts, by stat (min, avg, max).",
    ),
    (METRIC_HTTP_STATUS, "Last HTTP status the probe received."),
    (
        METRIC_ERRORS,
        "Failed probe attempts by kind (resolve, timeout, refused, unreachable, status, tls, network).",
    ),
];

/// One attempt's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Answered in this many seconds (for http: with an accepted status).
    Ok(f64),
    /// Failed; the kind is the `kind` label of the error count.
    Failed(&'static str),
}

/// What a round said.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// Attempts made.
    pub sent: u32,
    /// Attempts that succeeded.
    pub received: u32,
    /// min, avg, max latency of the successes, in seconds.
    pub latency: Option<(f64, f64, f64)>,
}

impl Round {
    /// Summarises the attempts of one round.
    pub fn of(attempts: &[Attempt]) -> Self {
        let times: Vec<f64> = attempts
            .iter()
            .filter_map(|a| match a {
                Attempt::Ok(t) => Some(*t),
                Attempt::Failed(_) => None,
            })
            .collect();
        let latency = (!times.is_empty()).then(|| {
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let max = times.iter().copied().fold(0.0, f64::max);
            #[allow(clippy::cast_precision_loss)] // at most 100 attempts
            let avg = times.iter().sum::<f64>() / times.len() as f64;
            (min, avg, max)
        });
        Self {
            sent: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
            received: u32::try_from(times.len()).unwrap_or(u32::MAX),
            latency,
        }
    }

    /// Failed share of the attempts (1 when none were made).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            1.0 - f64::from(self.received) / f64::from(self.sent)
        }
    }

    /// The round's samples for probe `id` of `kind`, with the probe's `labels`.
    pub fn samples(
        &self,
        id: &str,
        kind: ProbeKind,
        ts_ms: i64,
        labels: &[(&str, &str)],
    ) -> Vec<Sample> {
        let mut with_kind: Vec<(&str, &str)> = vec![("probe", kind.as_str())];
        with_kind.extend_from_slice(labels);
        let up = if self.received > 0 { 1.0 } else { 0.0 };
        let mut out = vec![
            sample(METRIC_UP, id, up, SampleKind::Gauge, ts_ms, &with_kind),
            sample(
                METRIC_LOSS,
                id,
                self.loss(),
                SampleKind::Gauge,
                ts_ms,
                &with_kind,
            ),
        ];
        if let Some((min, avg, max)) = self.latency {
            for (stat, value) in [("min", min), ("avg", avg), ("max", max)] {
                let mut l = with_kind.clone();
                l.push(("stat", stat));
                out.push(sample(
                    METRIC_LATENCY,
                    id,
                    value,
                    SampleKind::Gauge,
                    ts_ms,
                    &l,
                ));
            }
        }
        out
    }
}

/// Whether an HTTP `status` is a success: one of `expected`, or below 400 when none are listed.
pub fn status_ok(status: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (100..400).contains(&status)
    } else {
        expected.contains(&status)
    }
}

/// Whether group `gid` may open unprivileged ICMP ("ping") sockets, by the text of
/// `/proc/sys/net/ipv4/ping_group_range` (`"1\t0"`, the default, allows nobody).
pub fn unprivileged_icmp_allowed(ping_group_range: &str, gid: u32) -> bool {
    let mut parts = ping_group_range.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(low)), Some(Ok(high))) => low <= gid && gid <= high,
        _ => false,
    }
}

/// The effective group id from the text of `/proc/self/status` (`Gid:` real, effective, …).
pub fn effective_gid(proc_status: &str) -> Option<u32> {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|g| g.parse().ok())
}

/// The error kind of a failed connect or send.
pub fn io_error_kind(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "refused",
        std::io::ErrorKind::TimedOut => "timeout",
        std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
            "unreachable"
        }
        _ => "network",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_give_loss_and_latency() {
        use Attempt::{Failed, Ok};
        // (attempts, loss, latency)
        type Case = (Vec<Attempt>, f64, Option<(f64, f64, f64)>);
        let cases: Vec<Case> = vec![
            (
                vec![Ok(0.001), Ok(0.003), Ok(0.002)],
                0.0,
                Some((0.001, 0.002, 0.003)),
            ),
            (
                vec![Ok(0.01), Failed("timeout"), Failed("timeout"), Ok(0.03)],
                0.5,
                Some((0.01, 0.02, 0.03)),
            ),
            (vec![Failed("timeout"); 5], 1.0, None),
            (vec![Failed("refused")], 1.0, None),
            (vec![], 1.0, None),
        ];
        for (attempts, loss, latency) in cases {
            let round = Round::of(&attempts);
            assert!((round.loss() - loss).abs() < 1e-12, "{attempts:?}");
            match (round.latency, latency) {
                (Some(got), Some(want)) => {
                    assert!(
                        (got.0 - want.0).abs() < 1e-12
                            && (got.1 - want.1).abs() < 1e-12
                            && (got.2 - want.2).abs() < 1e-12,
                        "{attempts:?}"
                    );
                }
                (got, want) => assert_eq!(got, want, "{attempts:?}"),
            }
        }
    }

    #[test]
    fn round_samples() {
        let round = Round::of(&[Attempt::Ok(0.002), Attempt::Failed("timeout")]);
        let samples = round.samples("edge1", ProbeKind::Icmp, 5, &[("site", "x")]);
        let find = |m: &str, stat: Option<&str>| {
            samples
                .iter()
                .find(|s| s.metric == m && s.labels.get("stat").map(String::as_str) == stat)
                .map(|s| s.value)
        };
        assert_eq!(find(METRIC_UP, None), Some(1.0));
        assert_eq!(find(METRIC_LOSS, None), Some(0.5));
        assert_eq!(find(METRIC_LATENCY, Some("max")), Some(0.002));
        assert!(samples.iter().all(|s| s.target == "edge1"
            && s.labels.get("probe").map(String::as_str) == Some("icmp")
            && s.labels.get("site").map(String::as_str) == Some("x")));
        let dead = Round::of(&[Attempt::Failed("timeout")]).samples("x", ProbeKind::Tcp, 5, &[]);
        assert_eq!(dead.len(), 2, "no latency without an answer");
        // Every family a round produces has its help line.
        assert!(
            samples
                .iter()
                .all(|s| HELP.iter().any(|(m, _)| *m == s.metric)),
            "{samples:?}"
        );
    }

    #[test]
    fn http_status_judgement() {
        let cases: &[(u16, &[u16], bool)] = &[
            (200, &[], true),
            (301, &[], true),
            (404, &[], false),
            (500, &[], false),
            (500, &[500], true),
            (200, &[204], false),
        ];
        for (status, expected, want) in cases {
            assert_eq!(status_ok(*status, expected), *want, "{status} {expected:?}");
        }
    }

    #[test]
    fn unprivileged_icmp_detection() {
        let cases = [
            ("1\t0\n", 0, false),
            ("1\t0\n", 1000, false),
            ("0\t2147483647\n", 0, true),
            ("100 200", 150, true),
            ("100 200", 99, false),
            ("garbage", 0, false),
        ];
        for (range, gid, want) in cases {
            assert_eq!(
                unprivileged_icmp_allowed(range, gid),
                want,
                "{range:?} {gid}"
            );
        }
        let status = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t10\t20\t20\t20\n";
        assert_eq!(effective_gid(status), Some(20));
        assert_eq!(effective_gid("Name: x\n"), None);
    }
}
