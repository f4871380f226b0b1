//! The tables: one run's rows, and every run side by side at the end.

use std::time::Duration;

use crate::process::CpuMark;

/// One run, for the table of every run.
pub(crate) struct Summary {
    pub(crate) target: String,
    pub(crate) count: usize,
    pub(crate) ready: Option<Duration>,
    /// Raw batched CreateTopics of the same topics on a fresh broker.
    pub(crate) broker_time: Option<Duration>,
    pub(crate) describe_all: Option<Duration>,
    pub(crate) cpu: Option<CpuMark>,
    pub(crate) rss_peak_mib: Option<f64>,
    pub(crate) rss_base_mib: Option<f64>,
    pub(crate) requests: Option<u64>,
    pub(crate) round_trips: Option<usize>,
    pub(crate) status_writes: usize,
    pub(crate) events: usize,
    /// The first resync: broker requests, wall span, status writes, complete and unchanged.
    pub(crate) resync: Option<(u64, Duration, usize, bool)>,
    pub(crate) error: Option<String>,
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// Every run side by side, then the operator's cost per topic against the smallest run on the
/// same kind of broker (the linearity target: within 1.5x).
pub(crate) fn print_summary(runs: &[Summary]) {
    println!();
    println!("=== side by side (CPU from the first create until all Ready; RSS per topic: peak over the RSS before any topic) ===");
    println!(
        "{:<7} {:>6} {:>10} {:>10} {:>13} {:>16} {:>16} {:>7} {:>6} {:>8} {:>7} {:>24} {:>20}",
        "broker",
        "topics",
        "to Ready",
        "broker's",
        "operator CPU",
        "peak RSS",
        "bench/emu/dbl",
        "broker",
        "round",
        "status",
        "Events",
        "one resync: requests,",
        "DescribeConfigs"
    );
    println!(
        "{:<7} {:>6} {:>10} {:>10} {:>13} {:>16} {:>16} {:>7} {:>6} {:>8} {:>7} {:>24} {:>20}",
        "",
        "",
        "",
        "own",
        "ms/topic",
        "KiB/topic",
        "CPU s",
        "reqs",
        "trips",
        "writes",
        "",
        "span, status writes",
        "of all"
    );
    for r in runs {
        let n = r.count as f64;
        let cpu = opt(r.cpu, |c| {
            format!("{:.1}s {:.2}", c.operator, c.operator * 1000.0 / n)
        });
        let rss = opt(r.rss_peak_mib.zip(r.rss_base_mib), |(p, b)| {
            format!("{p:.0}M {:.1}", (p - b) * 1024.0 / n)
        });
        let others = opt(r.cpu, |c| {
            format!("{:.1}/{:.1}/{:.1}", c.bench, c.emulator, c.double)
        });
        let resync = opt(r.resync, |(q, span, w, ok)| {
            format!(
                "{q}, {:.2}s, {w}{}",
                span.as_secs_f64(),
                if ok { "" } else { " (!)" }
            )
        });
        println!(
            "{:<7} {:>6} {:>10} {:>10} {:>13} {:>16} {:>16} {:>7} {:>6} {:>8} {:>7} {:>24} {:>20}",
            r.target,
            r.count,
            opt(r.ready, |t| format!("{:.1}s", t.as_secs_f64())),
            opt(r.broker_time, |t| format!("{:.1}s", t.as_secs_f64())),
            cpu,
            rss,
            others,
            opt(r.requests, |q| q.to_string()),
            opt(r.round_trips, |q| q.to_string()),
            r.status_writes,
            r.events,
            resync,
            opt(r.describe_all, |t| format!("{:.2}s", t.as_secs_f64())),
        );
        if let Some(e) = &r.error {
            println!("        ^ ERROR: {e}");
        }
    }
    println!();
    println!("linearity (per topic against the smallest run on the same broker; target <= 1.5x):");
    for r in runs {
        let Some(small) = runs
            .iter()
            .filter(|s| s.target == r.target)
            .min_by_key(|s| s.count)
        else {
            continue;
        };
        if small.count == r.count {
            continue;
        }
        let per = |s: &Summary| s.cpu.map(|c| c.operator / s.count as f64);
        let rss = |s: &Summary| {
            s.rss_peak_mib
                .zip(s.rss_base_mib)
                .map(|(p, b)| (p - b) / s.count as f64)
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x {}", a / b, verdict(a / b <= 1.5)),
            _ => "-".into(),
        };
        println!(
            "  {} {}: CPU a topic {} of {}'s, RSS a topic {}",
            r.target,
            r.count,
            ratio(per(r), per(small)),
            small.count,
            ratio(rss(r), rss(small)),
        );
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) struct Row {
    pub(crate) metric: String,
    pub(crate) value: String,
    pub(crate) target: String,
    pub(crate) verdict: &'static str,
}

pub(crate) fn row(
    metric: impl Into<String>,
    value: impl Into<String>,
    target: impl Into<String>,
    verdict: &'static str,
) -> Row {
    Row {
        metric: metric.into(),
        value: value.into(),
        target: target.into(),
        verdict,
    }
}

pub(crate) fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}
