//! What a broker call asked of the broker: its requests by Kafka API and outcome, as plain data.
//! Every [`super::BrokerAdmin`] and [`super::lag::LagObserver`] call fills one; what is done
//! with it (metrics, counts in logs and benchmarks) is up to the layers above.

use std::collections::BTreeMap;

use super::BrokerError;

/// The `result` label of a request that ended with `result`: `ok`, or the error's
/// [`BrokerError::metric_label`].
pub fn result_label(result: Result<(), &BrokerError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.metric_label(),
    }
}

/// Broker requests of one call, by API: counted when sent ([`RequestTally::sent`]), with their
/// outcome once known ([`RequestTally::answered`]); whatever is still unanswered when the call
/// ends takes the call's outcome ([`RequestTally::finish`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestTally {
    /// `(api, result label)` → requests with that outcome.
    done: BTreeMap<(&'static str, &'static str), u64>,
    /// api → requests sent whose outcome is not known yet.
    pending: BTreeMap<&'static str, u64>,
}

impl RequestTally {
    /// `n` requests of `api` went to the broker.
    pub fn sent(&mut self, api: &'static str, n: u64) {
        if n > 0 {
            *self.pending.entry(api).or_insert(0) += n;
        }
    }

    /// `n` of the requests of `api` sent so far ended with `result` (at most as many as are
    /// pending).
    pub fn answered(&mut self, api: &'static str, n: u64, result: Result<(), &BrokerError>) {
        let Some(pending) = self.pending.get_mut(api) else {
            return;
        };
        let n = n.min(*pending);
        *pending -= n;
        if *pending == 0 {
            self.pending.remove(api);
        }
        if n > 0 {
            *self.done.entry((api, result_label(result))).or_insert(0) += n;
        }
    }

    /// One request of `api`, sent and ended with `result`.
    pub fn request(&mut self, api: &'static str, result: Result<(), &BrokerError>) {
        self.sent(api, 1);
        self.answered(api, 1, result);
    }

    /// The call ended with `result`: every request still unanswered takes that outcome.
    pub fn finish(&mut self, result: Result<(), &BrokerError>) {
        for (api, n) in std::mem::take(&mut self.pending) {
            *self.done.entry((api, result_label(result))).or_insert(0) += n;
        }
    }

    /// Adds `other`'s requests to these.
    pub fn merge(&mut self, other: &RequestTally) {
        for (key, n) in &other.done {
            *self.done.entry(*key).or_insert(0) += n;
        }
        for (api, n) in &other.pending {
            *self.pending.entry(api).or_insert(0) += n;
        }
    }

    /// `(api, result label, requests)` of every request whose outcome is known, by API then
    /// result.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        self.done
            .iter()
            .map(|((api, result), n)| (*api, *result, *n))
    }

    /// Every request sent, answered or not.
    pub fn total(&self) -> u64 {
        self.done.values().sum::<u64>() + self.pending.values().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_are_counted_by_api_and_outcome_and_the_rest_takes_the_calls_outcome() {
        let mut t = RequestTally::default();
        t.request("Metadata", Ok(()));
        t.sent("ListOffsets", 4);
        t.answered("ListOffsets", 2, Ok(()));
        t.answered("ListOffsets", 9, Err(&BrokerError::Unreachable("x".into())));
        t.sent("OffsetFetch", 3);
        t.answered("OffsetFetch", 1, Ok(()));
        // Never sent: not counted.
        t.answered("DescribeGroups", 1, Ok(()));
        assert_eq!(t.total(), 1 + 4 + 3);
        t.finish(Err(&BrokerError::Timeout {
            api: "OffsetFetch",
            after: Duration::from_secs(1),
        }));
        assert_eq!(
            t.counts().collect::<Vec<_>>(),
            [
                ("ListOffsets", "ok", 2),
                ("ListOffsets", "unreachable", 2),
                ("Metadata", "ok", 1),
                ("OffsetFetch", "ok", 1),
                ("OffsetFetch", "timeout", 2),
            ]
        );
        assert_eq!(t.total(), 8);
        let mut sum = RequestTally::default();
        sum.merge(&t);
        sum.merge(&t);
        assert_eq!(sum.total(), 16);
        assert_eq!(sum.counts().next(), Some(("ListOffsets", "ok", 4)));
    }

    #[test]
    fn broker_errors_map_to_a_few_result_labels() {
        let labels: Vec<&str> = [
            Ok(()),
            Err(BrokerError::Unreachable("x".into())),
            Err(BrokerError::Timeout {
                api: "Metadata",
                after: Duration::from_secs(1),
            }),
            Err(BrokerError::Unsupported {
                api: "CreatePartitions",
                message: "no".into(),
            }),
            Err(BrokerError::Rejected {
                api: "CreateTopics",
                code: "PolicyViolation".into(),
                message: "no".into(),
            }),
            Err(BrokerError::Client("x".into())),
            Err(BrokerError::Credentials("x".into())),
        ]
        .iter()
        .map(|r| result_label(r.as_ref().map(|_| ())))
        .collect();
        assert_eq!(
            labels,
            [
                "ok",
                "unreachable",
                "timeout",
                "unsupported",
                "rejected",
                "error",
                "error"
            ]
        );
    }
}
