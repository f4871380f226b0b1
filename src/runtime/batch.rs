//! Collecting a burst of requests into one batch: what every per-cluster batcher shares.

use std::time::Duration;

use tokio::sync::mpsc;

/// Gathers one batch: after the first item, keeps taking items while they keep coming (no gap
/// longer than `window`), for at most ten windows in all, and at most `max` items. A burst
/// (2,000 KafkaTopics applied at once) thus becomes a few large batches; a lone change waits
/// one window.
pub async fn gather<T>(
    rx: &mut mpsc::Receiver<T>,
    first: T,
    window: Duration,
    max: usize,
) -> Vec<T> {
    let mut batch = vec![first];
    let hard_deadline = tokio::time::Instant::now() + window * 10;
    while batch.len() < max {
        let deadline = (tokio::time::Instant::now() + window).min(hard_deadline);
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => batch.push(item),
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_steady_stream_is_gathered_until_it_pauses_or_ten_windows_pass() {
        let (tx, mut rx) = mpsc::channel(100);
        tokio::spawn(async move {
            for i in 0..40 {
                tx.send(i).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let first = rx.recv().await.unwrap();
        // Items 5 ms apart never leave a 50 ms gap: the batch grows past one window...
        let batch = gather(&mut rx, first, Duration::from_millis(50), 1000).await;
        assert!(batch.len() > 15, "gathered {}", batch.len());
        let (tx, mut rx) = mpsc::channel(100);
        tokio::spawn(async move {
            for i in 0..100 {
                tx.send(i).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let first = rx.recv().await.unwrap();
        // ...but not past ten windows (here 10 x 5 ms = 50 ms, against a 500 ms stream).
        let batch = gather(&mut rx, first, Duration::from_millis(5), 1000).await;
        assert!(batch.len() < 60, "gathered {}", batch.len());
    }
}
