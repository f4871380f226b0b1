//! How many topics go into one broker round trip: adapted to the latency the cluster shows, so
//! that one round trip stays well inside the request timeout however slow the broker is (a
//! test broker that slows down as it fills, a real cluster under load) and grows back when it
//! is fast. Pure: the batcher tells it what each round trip cost, it answers the next limit.

use std::time::Duration;

/// The smallest batch the sizer goes down to: below it a round trip's fixed cost dominates.
pub const MIN_BATCH: usize = 10;

/// The adaptive limit on topics per round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSizer {
    limit: usize,
    max: usize,
    /// How long one round trip should take at most: a fraction of the request timeout.
    target: Duration,
}

impl BatchSizer {
    /// Starts at `max` topics a round trip; aims at round trips no longer than a quarter of
    /// `request_timeout`.
    pub fn new(max: usize, request_timeout: Duration) -> Self {
        let max = max.max(1);
        Self {
            limit: max,
            max,
            target: request_timeout / 4,
        }
    }

    /// The most topics the next round trip takes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Learns from one round trip of `topics` topics that took `elapsed`; `timed_out` when the
    /// broker did not answer within the request timeout.
    ///
    /// - A timeout halves the limit (the round trip said nothing about the cost per topic).
    /// - A round trip slower than the target shrinks the limit to what fits in the target at
    ///   the cost per topic just seen.
    /// - A full round trip (at the limit) well inside the target grows the limit towards what
    ///   would fit, at most doubling it at a time. A small round trip says little (its fixed
    ///   cost dominates), so it changes nothing.
    pub fn observe(&mut self, topics: usize, elapsed: Duration, timed_out: bool) {
        let floor = MIN_BATCH.min(self.max);
        if timed_out {
            self.limit = (topics.min(self.limit) / 2).max(floor);
            return;
        }
        if topics == 0 {
            return;
        }
        let fits = fitting(topics, elapsed, self.target);
        if elapsed > self.target {
            self.limit = fits.clamp(floor, self.max);
        } else if topics >= self.limit && elapsed < self.target / 2 {
            self.limit = fits
                .min(self.limit.saturating_mul(2))
                .clamp(floor, self.max);
        }
    }
}

/// How many topics fit in `target` when `topics` took `elapsed`.
fn fitting(topics: usize, elapsed: Duration, target: Duration) -> usize {
    let elapsed = elapsed.as_secs_f64();
    if elapsed <= 0.0 {
        return usize::MAX;
    }
    (target.as_secs_f64() * topics as f64 / elapsed).floor() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    #[test]
    fn starts_at_the_maximum_and_keeps_it_while_the_broker_is_fast() {
        let mut s = BatchSizer::new(1000, TIMEOUT);
        assert_eq!(s.limit(), 1000);
        s.observe(1000, Duration::from_millis(900), false);
        assert_eq!(s.limit(), 1000);
    }

    #[test]
    fn a_slow_round_trip_shrinks_the_batch_to_what_fits_in_a_quarter_of_the_timeout() {
        let mut s = BatchSizer::new(1000, TIMEOUT);
        // 1,000 topics in 20 s: 20 ms a topic; 7.5 s fit 375.
        s.observe(1000, Duration::from_secs(20), false);
        assert_eq!(s.limit(), 375);
        // The broker keeps slowing down (it fills): 375 topics now take 15 s.
        s.observe(375, Duration::from_secs(15), false);
        assert_eq!(s.limit(), 187);
    }

    #[test]
    fn a_timeout_halves_the_batch_down_to_a_floor() {
        let mut s = BatchSizer::new(1000, TIMEOUT);
        s.observe(1000, TIMEOUT, true);
        assert_eq!(s.limit(), 500);
        for _ in 0..20 {
            s.observe(s.limit(), TIMEOUT, true);
        }
        assert_eq!(s.limit(), MIN_BATCH);
    }

    #[test]
    fn a_fast_full_round_trip_grows_the_batch_at_most_twofold_up_to_the_maximum() {
        let mut s = BatchSizer::new(1000, TIMEOUT);
        s.observe(1000, TIMEOUT, true);
        s.observe(500, TIMEOUT, true);
        assert_eq!(s.limit(), 250);
        s.observe(250, Duration::from_millis(100), false);
        assert_eq!(s.limit(), 500);
        s.observe(500, Duration::from_millis(100), false);
        assert_eq!(s.limit(), 1000);
        s.observe(1000, Duration::from_millis(100), false);
        assert_eq!(s.limit(), 1000);
    }

    #[test]
    fn a_small_round_trip_says_nothing_about_the_cost_per_topic() {
        let mut s = BatchSizer::new(1000, TIMEOUT);
        s.observe(1000, TIMEOUT, true);
        // One topic in 200 ms is the round trip's fixed cost, not 200 ms a topic.
        s.observe(1, Duration::from_millis(200), false);
        assert_eq!(s.limit(), 500);
    }

    #[test]
    fn a_maximum_below_the_floor_is_kept() {
        let mut s = BatchSizer::new(4, TIMEOUT);
        s.observe(4, TIMEOUT, true);
        assert_eq!(s.limit(), 4);
        s.observe(4, Duration::from_secs(20), false);
        assert_eq!(s.limit(), 4);
        let mut one = BatchSizer::new(0, TIMEOUT);
        assert_eq!(one.limit(), 1);
        one.observe(1, TIMEOUT, true);
        assert_eq!(one.limit(), 1);
    }
}
