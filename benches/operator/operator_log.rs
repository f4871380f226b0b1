//! The operator's log.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// One "broker round trip" line of the operator's JSON log.
#[derive(Clone, Debug)]
pub(crate) struct RoundTrip {
    pub(crate) at: Timestamp,
    pub(crate) intents: u64,
    pub(crate) requests: u64,
    pub(crate) total_requests: u64,
    pub(crate) elapsed_ms: u64,
    pub(crate) ok: bool,
}

/// Reads the operator's stderr as it grows.
pub(crate) struct Log {
    path: PathBuf,
    offset: u64,
    partial: String,
    pub(crate) trips: Vec<RoundTrip>,
    /// WARN and ERROR lines (their message and fields, as logged).
    pub(crate) problems: Vec<String>,
    pub(crate) lines: usize,
    pub(crate) unparsed: usize,
}

impl Log {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: String::new(),
            trips: Vec::new(),
            problems: Vec::new(),
            lines: 0,
            unparsed: 0,
        }
    }

    /// Reads what was appended since the last call.
    pub(crate) fn poll(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return;
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end());
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.unparsed += 1;
            if self.problems.len() < 1000 {
                self.problems.push(format!("(not JSON) {line}"));
            }
            return;
        };
        let fields = &v["fields"];
        let level = v["level"].as_str().unwrap_or("");
        if fields["message"].as_str() == Some("broker round trip") {
            let n = |k: &str| fields[k].as_u64().unwrap_or(0);
            let at = v["timestamp"]
                .as_str()
                .and_then(|t| Timestamp::from_str(t).ok())
                .unwrap_or_else(Timestamp::now);
            self.trips.push(RoundTrip {
                at,
                intents: n("intents"),
                requests: n("requests"),
                total_requests: n("total_requests"),
                elapsed_ms: n("elapsed_ms"),
                ok: fields["ok"].as_bool().unwrap_or(true),
            });
        } else if matches!(level, "WARN" | "ERROR") && self.problems.len() < 1000 {
            self.problems.push(format!("{level} {fields}"));
        }
    }
}

/// Totals of a run of round trips.
pub(crate) struct Trips {
    pub(crate) count: usize,
    pub(crate) intents: u64,
    pub(crate) requests: u64,
    pub(crate) last_total: u64,
    pub(crate) failed: usize,
    pub(crate) max_intents: u64,
    pub(crate) elapsed_ms: u64,
    /// From the start of the first (its log time less its elapsed_ms) to the end of the last.
    pub(crate) span: Duration,
    /// Each round trip's topics (intents), in order.
    pub(crate) sizes: Vec<usize>,
}

pub(crate) fn totals(trips: &[RoundTrip]) -> Trips {
    let span = match (trips.first(), trips.last()) {
        (Some(first), Some(last)) => {
            let start = first
                .at
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_millis(
                    first.elapsed_ms as i64,
                ))
                .unwrap_or(first.at);
            last.at.duration_since(start).unsigned_abs()
        }
        _ => Duration::ZERO,
    };
    Trips {
        count: trips.len(),
        intents: trips.iter().map(|t| t.intents).sum(),
        requests: trips.iter().map(|t| t.requests).sum(),
        last_total: trips.last().map_or(0, |t| t.total_requests),
        failed: trips.iter().filter(|t| !t.ok).count(),
        max_intents: trips.iter().map(|t| t.intents).max().unwrap_or(0),
        elapsed_ms: trips.iter().map(|t| t.elapsed_ms).sum(),
        span,
        sizes: trips.iter().map(|t| t.intents as usize).collect(),
    }
}
