//! Progress of `apply` and `delete` on a terminal: a bar on standard error that says which
//! kind of request is under way and advances as each broker request of the execution
//! returns, by the topics it carried; cleared before the report is printed. Nothing at all
//! when standard error is not a terminal (a pipe, a file, a CI log) or for a few topics.

use std::io::IsTerminal;

use futures::future::BoxFuture;
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::kafka::{
    BrokerAdmin, BrokerError, BrokerSnapshot, ClusterInfo, ConfigChange, NewTopic, RequestTally,
    TopicOutcome,
};

/// Fewer actions than this finish before a bar would be worth reading.
pub const MIN_ACTIONS: usize = 10;

/// A bar for `actions` broker actions on cluster `label`, drawn on standard error when it is a
/// terminal and there are at least [`MIN_ACTIONS`]; otherwise a hidden bar (which still
/// counts, and draws nothing).
pub fn bar(label: &str, actions: usize) -> ProgressBar {
    bar_for(std::io::stderr().is_terminal(), label, actions)
}

fn bar_for(terminal: bool, label: &str, actions: usize) -> ProgressBar {
    if !terminal || actions < MIN_ACTIONS {
        let hidden = ProgressBar::hidden();
        hidden.set_length(actions as u64);
        return hidden;
    }
    let bar = ProgressBar::with_draw_target(Some(actions as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} topics {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// A broker client that advances `bar` by the topics of each write request once it returns
/// (done or failed: either way the topic has had its turn).
pub struct Progress<'a> {
    inner: &'a dyn BrokerAdmin,
    bar: ProgressBar,
}

impl<'a> Progress<'a> {
    pub fn new(inner: &'a dyn BrokerAdmin, bar: ProgressBar) -> Self {
        Self { inner, bar }
    }

    /// Clears the bar from the terminal (before the report is printed).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn advance(&self, topics: usize) {
        let position = self.bar.position() + topics as u64;
        let end = self.bar.length().unwrap_or(position);
        self.bar.set_position(position.min(end));
    }
}

macro_rules! advancing {
    ($self:ident, $requests:ident, $call:ident($topics:ident), $doing:literal) => {
        async move {
            $self.bar.set_message($doing);
            let result = $self.inner.$call($topics, $requests).await;
            $self.advance($topics.len());
            result
        }
        .boxed()
    };
}

impl BrokerAdmin for Progress<'_> {
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        self.inner.snapshot_tallied(describe, requests)
    }

    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        advancing!(self, requests, create_topics_tallied(topics), "creating")
    }

    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        advancing!(
            self,
            requests,
            create_partitions_tallied(topics),
            "adding partitions"
        )
    }

    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        advancing!(self, requests, alter_configs_tallied(topics), "configuring")
    }

    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        advancing!(self, requests, delete_topics_tallied(topics), "deleting")
    }

    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
        self.inner.cluster_info_tallied(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::memory::MemoryBroker;
    use crate::model::TopicName;
    use crate::topics::execute::execute;
    use crate::topics::plan::{Action, Plan};

    fn create(name: &str) -> Action {
        Action::Create {
            name: TopicName::parse(name).unwrap(),
            partitions: 1,
            replication_factor: None,
            config: Default::default(),
        }
    }

    #[test]
    fn a_bar_is_drawn_only_to_a_terminal_and_only_for_more_than_a_few_topics() {
        assert!(bar_for(false, "local", 2_000).is_hidden());
        assert!(bar_for(true, "local", MIN_ACTIONS - 1).is_hidden());
        // Drawn to standard error when it is a terminal (under `cargo test` it may not be, and
        // indicatif then hides it too: only the choice of target is ours to check).
        let drawn = bar_for(true, "local", MIN_ACTIONS);
        assert_eq!(drawn.length(), Some(MIN_ACTIONS as u64));
        drawn.finish_and_clear();
    }

    #[tokio::test]
    async fn the_bar_advances_by_the_topics_of_each_request_as_it_returns() {
        let broker = std::sync::Arc::new(MemoryBroker::new());
        let mut plan = Plan {
            actions: (0..25).map(|i| create(&format!("t{i:02}"))).collect(),
            ..Default::default()
        };
        plan.actions.push(Action::Delete {
            name: TopicName::parse("absent").unwrap(),
        });
        let bar = ProgressBar::hidden();
        bar.set_length(plan.actions.len() as u64);
        let admin = Progress::new(&broker, bar.clone());
        let report = execute(&plan, &admin).await;
        assert_eq!(report.results.len(), 26);
        assert_eq!(
            bar.position(),
            26,
            "25 creations and one deletion had their turn"
        );
        admin.finish();
        assert!(bar.is_finished());
    }
}
