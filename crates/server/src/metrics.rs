//! Counters behind `GET /metrics`, written in the Prometheus text format (version 0.0.4).
//!
//! Every label value is one of a fixed set (the routes, the task names, the error kinds), so a
//! client cannot blow up the number of series by sending odd paths or task names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mixed_r1_reward::router::TASKS;
use mixed_r1_reward::ScoreResult;

use crate::error::ErrorKind;
use crate::openrlhf::Extraction;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The route label of a request path: one of the served routes, else `other`.
pub fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/get_reward" => "/get_reward",
        "/score" => "/score",
        "/health" => "/health",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// The task label of a result: a known task name, else `unknown`.
fn task_label(task: Option<&str>) -> &'static str {
    task.and_then(|t| TASKS.iter().find(|k| **k == t).copied())
        .unwrap_or("unknown")
}

/// What one scoring request contributed, computed off the async threads with the results.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchStats {
    pub samples: usize,
    pub per_task: BTreeMap<&'static str, TaskStats>,
    /// How OpenRLHF responses were cut out of their queries, in [`Extraction`] order.
    pub extraction: [u64; 3],
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TaskStats {
    /// Samples with an accuracy (and so a reward).
    pub scored: u64,
    /// Samples whose gold answer could not be used (reward null).
    pub skipped: u64,
    /// Samples that could not be scored at all (bad fields on `/score`).
    pub errors: u64,
    pub reward_sum: f64,
    pub accuracy_sum: f64,
}

impl BatchStats {
    pub fn from_results(results: &[ScoreResult], extraction: [u64; 3]) -> Self {
        let mut per_task: BTreeMap<&'static str, TaskStats> = BTreeMap::new();
        for r in results {
            let t = per_task.entry(task_label(r.task.as_deref())).or_default();
            match (r.accuracy, r.format) {
                (Some(a), _) => {
                    t.scored += 1;
                    t.reward_sum += r.reward.unwrap_or(0.0);
                    t.accuracy_sum += a;
                }
                // The sample parsed (its format was scored) but its gold was unusable.
                (None, Some(_)) => t.skipped += 1,
                (None, None) => t.errors += 1,
            }
        }
        BatchStats {
            samples: results.len(),
            per_task,
            extraction,
        }
    }
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    errors: BTreeMap<(&'static str, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    tasks: BTreeMap<&'static str, TaskStats>,
    extraction: [u64; 3],
}

/// The server's counters. Updated once per request under one short lock: scoring a batch takes
/// far longer than the update, so contention does not matter.
pub struct Metrics {
    started: Instant,
    in_flight: AtomicI64,
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            in_flight: AtomicI64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }
}

/// Counts a request as in flight until dropped (also when the client goes away and the
/// request's future is dropped mid-way).
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain counters behind: keep counting.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records a finished request.
    pub fn record_request(
        &self,
        endpoint: &'static str,
        status: u16,
        error: Option<ErrorKind>,
        elapsed: Duration,
    ) {
        let mut m = self.lock();
        *m.requests.entry((endpoint, status)).or_default() += 1;
        if let Some(kind) = error {
            *m.errors.entry((endpoint, kind.label())).or_default() += 1;
        }
        m.latency
            .entry(endpoint)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Records the samples of a scored batch.
    pub fn record_batch(&self, stats: &BatchStats) {
        let mut m = self.lock();
        for (task, s) in &stats.per_task {
            let t = m.tasks.entry(task).or_default();
            t.scored += s.scored;
            t.skipped += s.skipped;
            t.errors += s.errors;
            t.reward_sum += s.reward_sum;
            t.accuracy_sum += s.accuracy_sum;
        }
        for (total, n) in m.extraction.iter_mut().zip(stats.extraction) {
            *total += n;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "mixed_r1_build_info",
            "gauge",
            "Version of the mixed-r1 reward server.",
        );
        let _ = writeln!(
            out,
            "mixed_r1_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        family(
            &mut out,
            "mixed_r1_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(
            out,
            "mixed_r1_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        family(
            &mut out,
            "mixed_r1_requests_in_flight",
            "gauge",
            "Requests being read, scored or answered.",
        );
        let _ = writeln!(
            out,
            "mixed_r1_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );

        family(
            &mut out,
            "mixed_r1_http_requests_total",
            "counter",
            "HTTP requests by route and status code.",
        );
        for ((endpoint, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "mixed_r1_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        family(
            &mut out,
            "mixed_r1_http_request_errors_total",
            "counter",
            "Failed requests by route and kind (bad_json, bad_field, body_too_large, \
             batch_too_large, body_read, read_timeout, busy, timeout, not_found, ...).",
        );
        for ((endpoint, kind), n) in &m.errors {
            let _ = writeln!(
                out,
                "mixed_r1_http_request_errors_total{{endpoint=\"{endpoint}\",kind=\"{kind}\"}} {n}"
            );
        }
        family(
            &mut out,
            "mixed_r1_http_request_duration_seconds",
            "histogram",
            "Time from the request's headers to its response, by route.",
        );
        for (endpoint, h) in &m.latency {
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                cumulative += c;
                let _ = writeln!(
                    out,
                    "mixed_r1_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mixed_r1_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}\n\
                 mixed_r1_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}\n\
                 mixed_r1_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                h.count, h.sum, h.count
            );
        }

        family(
            &mut out,
            "mixed_r1_samples_total",
            "counter",
            "Samples by task and outcome: scored; skipped (gold answer unusable: reward null, \
             sent to OpenRLHF as 0.0); error (sample could not be read).",
        );
        for (task, t) in &m.tasks {
            for (outcome, n) in [
                ("scored", t.scored),
                ("skipped", t.skipped),
                ("error", t.errors),
            ] {
                let _ = writeln!(
                    out,
                    "mixed_r1_samples_total{{task=\"{task}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        family(
            &mut out,
            "mixed_r1_reward_sum",
            "counter",
            "Sum of the rewards of scored samples, by task.",
        );
        for (task, t) in &m.tasks {
            let _ = writeln!(
                out,
                "mixed_r1_reward_sum{{task=\"{task}\"}} {}",
                t.reward_sum
            );
        }
        family(
            &mut out,
            "mixed_r1_reward_mean",
            "gauge",
            "Mean reward of the scored samples since start, by task.",
        );
        for (task, t) in m.tasks.iter().filter(|(_, t)| t.scored > 0) {
            let _ = writeln!(
                out,
                "mixed_r1_reward_mean{{task=\"{task}\"}} {}",
                t.reward_sum / t.scored as f64
            );
        }
        family(
            &mut out,
            "mixed_r1_accuracy_mean",
            "gauge",
            "Mean accuracy of the scored samples since start, by task.",
        );
        for (task, t) in m.tasks.iter().filter(|(_, t)| t.scored > 0) {
            let _ = writeln!(
                out,
                "mixed_r1_accuracy_mean{{task=\"{task}\"}} {}",
                t.accuracy_sum / t.scored as f64
            );
        }
        family(
            &mut out,
            "mixed_r1_openrlhf_extraction_total",
            "counter",
            "How responses were cut out of OpenRLHF queries: prompt_prefix, template (chat-template \
             assistant marker) or whole_query (neither found).",
        );
        for (how, n) in Extraction::ALL.iter().zip(m.extraction) {
            let _ = writeln!(
                out,
                "mixed_r1_openrlhf_extraction_total{{method=\"{}\"}} {n}",
                how.label()
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        let results = vec![
            ScoreResult {
                reward: Some(1.5),
                format: Some(1.0),
                accuracy: Some(1.0),
                task: Some(Cow::Borrowed("mcq")),
                ..Default::default()
            },
            ScoreResult {
                reward: Some(0.5),
                format: Some(1.0),
                accuracy: Some(0.0),
                task: Some(Cow::Borrowed("mcq")),
                ..Default::default()
            },
            ScoreResult {
                format: Some(0.0),
                task: Some(Cow::Borrowed("grounding")),
                error: Some("bad gold".into()),
                ..Default::default()
            },
            ScoreResult::failed("bad sample"),
        ];
        m.record_batch(&BatchStats::from_results(&results, [2, 1, 1]));
        m.record_request("/score", 200, None, Duration::from_millis(3));
        m.record_request(
            "/score",
            400,
            Some(ErrorKind::BadJson),
            Duration::from_millis(1),
        );
        let text = m.render();
        for line in [
            "mixed_r1_http_requests_total{endpoint=\"/score\",status=\"200\"} 1",
            "mixed_r1_http_request_errors_total{endpoint=\"/score\",kind=\"bad_json\"} 1",
            "mixed_r1_http_request_duration_seconds_bucket{endpoint=\"/score\",le=\"0.001\"} 1",
            "mixed_r1_http_request_duration_seconds_bucket{endpoint=\"/score\",le=\"0.005\"} 2",
            "mixed_r1_http_request_duration_seconds_count{endpoint=\"/score\"} 2",
            "mixed_r1_samples_total{task=\"mcq\",outcome=\"scored\"} 2",
            "mixed_r1_samples_total{task=\"grounding\",outcome=\"skipped\"} 1",
            "mixed_r1_samples_total{task=\"unknown\",outcome=\"error\"} 1",
            "mixed_r1_reward_mean{task=\"mcq\"} 1",
            "mixed_r1_accuracy_mean{task=\"mcq\"} 0.5",
            "mixed_r1_openrlhf_extraction_total{method=\"template\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("mixed_r1_reward_mean{task=\"grounding\"}"));
    }
}
