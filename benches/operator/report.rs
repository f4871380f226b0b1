//! The table printed at the end.

use std::time::Duration;

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
