//! The topic-level configs Kafka knows, with the type and range of each value, so a typo or a
//! bad value is refused before anything is sent to a broker (some brokers, Tansu among them,
//! accept any key silently).

use std::collections::{BTreeMap, BTreeSet};

/// The shape of a config value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A 64-bit integer no smaller than the bound.
    Long(i64),
    /// A 32-bit integer no smaller than the bound.
    Int(i32),
    /// A compression level: `-1` (the codec's default) or a 32-bit integer between the
    /// bounds, inclusive.
    Level(i32, i32),
    /// A number between the bounds, inclusive.
    Ratio(f64, f64),
    Bool,
    /// One of the words.
    OneOf(&'static [&'static str]),
    /// A comma-separated, non-empty set of the words.
    SetOf(&'static [&'static str]),
    /// Any text (replica lists, deprecated format versions).
    Text,
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every topic-level config of Apache Kafka 3.x/4.x, sorted by key.
const CATALOG: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::SetOf(&["compact", "delete"])),
    ("compression.gzip.level", Kind::Level(1, 9)),
    ("compression.lz4.level", Kind::Level(1, 17)),
    ("compression.type", Kind::OneOf(COMPRESSION)),
    ("compression.zstd.level", Kind::Level(-131072, 22)),
    ("delete.retention.ms", Kind::Long(0)),
    ("file.delete.delay.ms", Kind::Long(0)),
    ("flush.messages", Kind::Long(1)),
    ("flush.ms", Kind::Long(0)),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int(0)),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long(-2)),
    ("local.retention.ms", Kind::Long(-2)),
    ("max.compaction.lag.ms", Kind::Long(1)),
    ("max.message.bytes", Kind::Int(0)),
    ("message.downconversion.enable", Kind::Bool),
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long(0)),
    ("message.timestamp.before.max.ms", Kind::Long(0)),
    ("message.timestamp.difference.max.ms", Kind::Long(0)),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio(0.0, 1.0)),
    ("min.compaction.lag.ms", Kind::Long(0)),
    ("min.insync.replicas", Kind::Int(1)),
    ("preallocate", Kind::Bool),
    ("remote.log.copy.disable", Kind::Bool),
    ("remote.log.delete.on.disable", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long(-1)),
    ("retention.ms", Kind::Long(-1)),
    ("segment.bytes", Kind::Int(14)),
    ("segment.index.bytes", Kind::Int(4)),
    ("segment.jitter.ms", Kind::Long(0)),
    ("segment.ms", Kind::Long(1)),
    ("unclean.leader.election.enable", Kind::Bool),
];

fn kind_of(key: &str) -> Option<Kind> {
    CATALOG
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .map(|i| CATALOG[i].1)
}

/// Every known key, for messages and tests.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|(k, _)| *k)
}

/// Keys Kafka's own tools set on a topic for a while (`kafka-reassign-partitions` throttles
/// the replicas it moves): a topic's config is the manifest's, except these, which are left
/// alone unless the manifest declares them, so a reassignment in progress keeps its throttle.
pub fn set_by_kafka_tools(key: &str) -> bool {
    matches!(
        key,
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas"
    )
}

/// Checks one key and value; the error says what is wrong and what would be right.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let Some(kind) = kind_of(key) else {
        let hint = closest_key(key)
            .map(|k| format!("; did you mean '{k}'?"))
            .unwrap_or_default();
        return Err(format!("'{key}' is not a Kafka topic config{hint}"));
    };
    let v = value.trim();
    match kind {
        Kind::Long(min) => match v.parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(n) => Err(format!("must be >= {min}, got {n}")),
            Err(_) => Err(format!("must be an integer, got '{value}'")),
        },
        Kind::Int(min) => match v.parse::<i32>() {
            Ok(n) if n >= min => Ok(()),
            Ok(n) => Err(format!("must be >= {min}, got {n}")),
            Err(_) => Err(format!("must be a 32-bit integer, got '{value}'")),
        },
        Kind::Level(lo, hi) => match v.parse::<i32>() {
            Ok(n) if n == -1 || (lo..=hi).contains(&n) => Ok(()),
            Ok(n) => Err(format!(
                "must be between {lo} and {hi} (or -1 for the codec's default), got {n}"
            )),
            Err(_) => Err(format!("must be a 32-bit integer, got '{value}'")),
        },
        Kind::Ratio(lo, hi) => match v.parse::<f64>() {
            Ok(x) if (lo..=hi).contains(&x) => Ok(()),
            Ok(x) => Err(format!("must be between {lo} and {hi}, got {x}")),
            Err(_) => Err(format!("must be a number, got '{value}'")),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err(format!("must be \"true\" or \"false\", got '{value}'")),
        },
        Kind::OneOf(words) => {
            if words.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "must be one of {}, got '{value}'",
                    words.join(", ")
                ))
            }
        }
        Kind::SetOf(words) => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            match items.iter().find(|i| !words.contains(i)) {
                Some(bad) => Err(format!(
                    "must be a comma-separated list of {}, got '{bad}'",
                    words.join(", ")
                )),
                None => Ok(()),
            }
        }
        Kind::Text if v.chars().any(char::is_control) => Err(
            "must not contain control characters (a NUL byte cannot even reach the broker)".into(),
        ),
        Kind::Text => Ok(()),
    }
}

/// Checks what Kafka refuses in a combination of keys (each key on its own being valid):
/// `min.compaction.lag.ms` above `max.compaction.lag.ms`, and, with `remote.storage.enable`,
/// a local retention above the total one. Only keys present in `config` are compared (an
/// absent key takes a broker default no offline check can know). Returns `(key, why)`.
pub fn check_together(config: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let long = |key: &str| config.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    let mut errors = Vec::new();
    if let (Some(min), Some(max)) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms")) {
        if min > max {
            errors.push((
                "min.compaction.lag.ms",
                format!("{min} exceeds max.compaction.lag.ms {max}: Kafka refuses a minimum above the maximum"),
            ));
        }
    }
    let remote = config
        .get("remote.storage.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if remote {
        for (local_key, total_key) in [
            ("local.retention.ms", "retention.ms"),
            ("local.retention.bytes", "retention.bytes"),
        ] {
            let (Some(local), Some(total)) = (long(local_key), long(total_key)) else {
                continue;
            };
            // -2: the local retention follows the total one; -1 total: unlimited.
            if local == -2 || total == -1 {
                continue;
            }
            if local == -1 || local > total {
                errors.push((
                    local_key,
                    format!("{local} exceeds {total_key} {total}: with remote.storage.enable, Kafka refuses a local retention above the total one (use -2 to follow {total_key})"),
                ));
            }
        }
    }
    errors
}

/// Whether two values of `key` mean the same to Kafka: `compact,delete` equals `delete,compact`,
/// `TRUE` equals `true`, `1.0` equals `1`.
pub fn same_value(key: &str, a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a == b {
        return true;
    }
    match kind_of(key) {
        Some(Kind::Bool) => a.eq_ignore_ascii_case(b),
        Some(Kind::Ratio(..)) => {
            matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
        }
        Some(Kind::SetOf(_)) => {
            let set = |s: &str| {
                s.split(',')
                    .map(|i| i.trim().to_owned())
                    .collect::<BTreeSet<_>>()
            };
            set(a) == set(b)
        }
        Some(Kind::Long(_)) | Some(Kind::Int(_)) | Some(Kind::Level(..)) => {
            matches!((a.parse::<i64>(), b.parse::<i64>()), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

/// The known key nearest to a misspelt one, if it is near enough to be a typo.
fn closest_key(key: &str) -> Option<&'static str> {
    known_keys()
        .map(|k| (edit_distance(k, key), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_for_binary_search() {
        assert!(CATALOG.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn accepts_good_values() {
        for (k, v) in [
            ("retention.ms", "604800000"),
            ("retention.ms", "-1"),
            ("cleanup.policy", "compact,delete"),
            ("min.insync.replicas", "2"),
            ("compression.type", "zstd"),
            ("unclean.leader.election.enable", "false"),
            ("min.cleanable.dirty.ratio", "0.5"),
        ] {
            assert_eq!(check(k, v), Ok(()), "{k}={v}");
        }
    }

    #[test]
    fn refuses_bad_values_saying_why() {
        assert!(check("retention.ms", "7d").unwrap_err().contains("integer"));
        assert!(check("retention.ms", "-5").unwrap_err().contains(">= -1"));
        assert!(check("cleanup.policy", "compact,forever")
            .unwrap_err()
            .contains("'forever'"));
        assert!(check("min.insync.replicas", "0")
            .unwrap_err()
            .contains(">= 1"));
        assert!(check("preallocate", "yes")
            .unwrap_err()
            .contains("\"true\""));
        assert!(check("min.cleanable.dirty.ratio", "2")
            .unwrap_err()
            .contains("between"));
    }

    #[test]
    fn upper_bounds_kafka_enforces_are_checked_offline() {
        assert_eq!(check("compression.gzip.level", "-1"), Ok(()));
        assert_eq!(check("compression.gzip.level", "9"), Ok(()));
        let e = check("compression.gzip.level", "10").unwrap_err();
        assert!(e.contains("between 1 and 9"), "{e}");
        assert!(check("compression.gzip.level", "0").is_err());
        assert!(check("compression.lz4.level", "18").is_err());
        assert_eq!(check("compression.zstd.level", "-5"), Ok(()));
        assert!(check("compression.zstd.level", "23").is_err());
        assert!(check("max.message.bytes", "3000000000")
            .unwrap_err()
            .contains("32-bit"));
        assert_eq!(
            check("follower.replication.throttled.replicas", "0:1,1:2"),
            Ok(())
        );
        assert!(check("follower.replication.throttled.replicas", "0:1\u{0}")
            .unwrap_err()
            .contains("control characters"));
    }

    #[test]
    fn combinations_kafka_refuses_are_checked_offline() {
        let config = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = check_together(&config(&[
            ("min.compaction.lag.ms", "5000"),
            ("max.compaction.lag.ms", "1000"),
        ]));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "min.compaction.lag.ms");
        assert!(check_together(&config(&[
            ("min.compaction.lag.ms", "1000"),
            ("max.compaction.lag.ms", "1000"),
        ]))
        .is_empty());
        let remote = config(&[
            ("remote.storage.enable", "true"),
            ("retention.ms", "1000"),
            ("local.retention.ms", "5000"),
            ("retention.bytes", "-1"),
            ("local.retention.bytes", "5000"),
        ]);
        let e = check_together(&remote);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "local.retention.ms");
        let mut local = remote.clone();
        local.remove("remote.storage.enable");
        assert!(
            check_together(&local).is_empty(),
            "only with remote storage"
        );
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let e = check("retention.msx", "1").unwrap_err();
        assert!(e.contains("did you mean 'retention.ms'"), "{e}");
        let e = check("totally.unrelated.key", "1").unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn equal_values_compare_by_meaning() {
        assert!(same_value(
            "cleanup.policy",
            "delete,compact",
            "compact, delete"
        ));
        assert!(same_value("preallocate", "TRUE", "true"));
        assert!(same_value("min.cleanable.dirty.ratio", "0.50", "0.5"));
        assert!(!same_value("retention.ms", "1000", "1001"));
        assert!(!same_value("message.format.version", "3.0", "3.0-IV1"));
    }
}
