//! Lag observation batched per cluster: the consumer reconciles of one cluster that arrive
//! within the window share one observation pass (one Metadata request, one ListOffsets, the
//! committed offsets of every group), instead of a pass per consumer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::kafka::lag::{GroupLag, GroupQuery, LagObserver};
use crate::kafka::{BrokerError, RequestTally};
use crate::runtime::batch::gather;
use crate::runtime::metrics::{QueueDepth, LAG_QUEUE};
use crate::runtime::{Connection, Options};

type Reply = oneshot::Sender<Result<GroupLag, BrokerError>>;

/// Submits group queries to the cluster's observation task.
#[derive(Clone)]
pub struct LagBatcher {
    tx: mpsc::Sender<(GroupQuery, Reply)>,
    /// Counts the queries waiting for their pass.
    queue: QueueDepth,
}

impl LagBatcher {
    /// The lag batcher of `connection`'s cluster, started on first use (one per connection).
    pub fn of(connection: &Connection, options: &Options) -> Arc<LagBatcher> {
        connection.attached(|c| {
            LagBatcher::spawn(c.lag.clone(), options.batch_window, options.max_batch)
                .with_queue_depth(options.metrics.queue(LAG_QUEUE))
        })
    }

    /// Counts the queries waiting for their pass in `queue`.
    pub fn with_queue_depth(self, queue: QueueDepth) -> Self {
        Self { queue, ..self }
    }

    pub fn spawn(observer: Arc<dyn LagObserver>, window: Duration, max_batch: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<(GroupQuery, Reply)>(max_batch.max(1) * 2);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let batch = gather(&mut rx, first, window, max_batch.max(1)).await;
                let (queries, replies): (Vec<GroupQuery>, Vec<Reply>) = batch.into_iter().unzip();
                let mut requests = RequestTally::default();
                let result = observer.observe_tallied(&queries, &mut requests).await;
                tracing::info!(
                    groups = queries.len(),
                    requests = requests.total(),
                    ok = result.is_ok(),
                    "lag observation pass"
                );
                match result {
                    Ok(lags) => {
                        for (reply, lag) in replies.into_iter().zip(lags) {
                            let _ = reply.send(Ok(lag));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self {
            tx,
            queue: QueueDepth::default(),
        }
    }

    /// Observes one group, in the next pass.
    pub async fn observe(&self, query: GroupQuery) -> Result<GroupLag, BrokerError> {
        let _queued = self.queue.pending();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((query, reply))
            .await
            .map_err(|_| BrokerError::Client("the cluster's lag observer has stopped".into()))?;
        answer.await.map_err(|_| {
            BrokerError::Client("the cluster's lag observer dropped the request".into())
        })?
    }
}
