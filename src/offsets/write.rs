//! Writing a planned reset: every partition's new offset in one `AlterConsumerGroupOffsets`,
//! then read back (`ListConsumerGroupOffsets`) and compared, so what is reported is what the
//! broker holds.

use std::collections::BTreeMap;

use super::plan::Plan;
use super::ResetError;
use crate::kafka::offsets::{GroupAdmin, TopicPartition};
use crate::kafka::RequestTally;

/// Commits the plan's offsets for `group` in one request and reads them back; the offsets the
/// broker holds afterwards. A partition the broker refused, or one that reads back different,
/// fails the write (naming each).
pub async fn write(
    admin: &dyn GroupAdmin,
    group: &str,
    plan: &Plan,
    requests: &mut RequestTally,
) -> Result<BTreeMap<TopicPartition, i64>, ResetError> {
    let offsets = plan.offsets();
    let outcomes = admin.alter_offsets(group, &offsets, requests).await?;
    let refused: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|r| format!("{}/{}: {r}", o.topic, o.partition))
        })
        .collect();
    if !refused.is_empty() {
        return Err(ResetError::Write(refused));
    }
    let partitions: Vec<TopicPartition> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
    let held = admin.committed(group, Some(&partitions), requests).await?;
    let differ: Vec<String> = offsets
        .iter()
        .filter(|(tp, o)| held.get(tp) != Some(o))
        .map(|((t, p), o)| {
            let found = held
                .get(&(t.clone(), *p))
                .map_or("none".to_owned(), ToString::to_string);
            format!("{t}/{p}: wrote {o}, the broker holds {found}")
        })
        .collect();
    if !differ.is_empty() {
        return Err(ResetError::Write(differ));
    }
    Ok(held)
}
