//! Where a reset moves a group's offsets to: [`Target`], and its parsing from the command
//! line's `--to` (`earliest`, `latest`, an RFC 3339 date-time, `shift:N`).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::jiff::Timestamp;
use thiserror::Error;

use crate::kafka::offsets::TopicPartition;

/// The target of a reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Each partition's log start offset: everything retained is read again.
    Earliest,
    /// Each partition's log end offset: the backlog is skipped.
    Latest,
    /// Each partition's first offset whose record's timestamp is at or after this instant (the
    /// end offset where no record is that late).
    Timestamp(Timestamp),
    /// The committed offset moved by N (negative: back, re-reading; positive: forward,
    /// skipping), clamped to the partition's range.
    ShiftBy(i64),
    /// These offsets, per partition; each must lie in the partition's range.
    Offsets(BTreeMap<TopicPartition, i64>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Earliest => f.write_str("earliest"),
            Target::Latest => f.write_str("latest"),
            Target::Timestamp(t) => write!(f, "{t}"),
            Target::ShiftBy(n) => write!(f, "shift:{n:+}"),
            Target::Offsets(o) => write!(f, "explicit offsets on {} partition(s)", o.len()),
        }
    }
}

/// A `--to` value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("--to '{value}': {reason}; use earliest, latest, an RFC 3339 date-time such as 2026-12-07T09:30:00Z, or shift:N such as shift:-10")]
pub struct TargetError {
    pub value: String,
    pub reason: String,
}

impl Target {
    /// Parses `earliest`, `latest`, `shift:N` (`N` signed) or an RFC 3339 date-time with an
    /// offset (`2026-12-07T09:30:00Z`, `2026-12-07T10:30:00+01:00`).
    pub fn parse(value: &str) -> Result<Self, TargetError> {
        let err = |reason: String| TargetError {
            value: value.to_owned(),
            reason,
        };
        let v = value.trim();
        match v {
            "earliest" => return Ok(Target::Earliest),
            "latest" => return Ok(Target::Latest),
            _ => {}
        }
        if let Some(n) = v.strip_prefix("shift:") {
            let n: i64 = n
                .trim()
                .parse()
                .map_err(|_| err(format!("'{n}' is not a whole number")))?;
            return Ok(Target::ShiftBy(n));
        }
        v.parse::<Timestamp>()
            .map(Target::Timestamp)
            .map_err(|e| err(format!("not a date-time ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_forms_parse_and_the_rest_says_what_is_accepted() {
        assert_eq!(Target::parse("earliest").unwrap(), Target::Earliest);
        assert_eq!(Target::parse("latest").unwrap(), Target::Latest);
        assert_eq!(Target::parse("shift:-10").unwrap(), Target::ShiftBy(-10));
        assert_eq!(Target::parse("shift:+3").unwrap(), Target::ShiftBy(3));
        let t = Target::parse("2026-12-07T10:30:00+01:00").unwrap();
        assert_eq!(
            t,
            Target::Timestamp("2026-12-07T09:30:00Z".parse().unwrap())
        );
        assert_eq!(t.to_string(), "2026-12-07T09:30:00Z");
        assert_eq!(Target::ShiftBy(-10).to_string(), "shift:-10");
        for bad in ["", "shift:ten", "2026-12-07", "yesterday", "shift:"] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.to_string().contains("use earliest, latest"), "{e}");
        }
    }
}
