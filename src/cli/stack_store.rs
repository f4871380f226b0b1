//! The stacks' states on a cluster: read from and written to the [`RecordStore`] in
//! [`STATE_TOPIC`] (key: the stack name; value: its [`StackState`] as JSON).

use std::collections::BTreeMap;

use thiserror::Error;

use super::stack::{StackState, StateError, STATE_TOPIC};

use crate::kafka::{BrokerAdmin, BrokerError, ClientSettings, RecordStore};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The stack states of one cluster.
pub struct StackStore(RecordStore);

impl StackStore {
    pub fn new(settings: &ClientSettings) -> Self {
        Self(RecordStore::new(settings, STATE_TOPIC))
    }

    /// Every stack's state (none when the topic does not exist yet). A record that is not a
    /// state document this version reads is an error: what it claims cannot be known.
    pub async fn read(&self) -> Result<BTreeMap<String, StackState>, StoreError> {
        let mut states = BTreeMap::new();
        for (stack, value) in self.0.read().await? {
            let state = StackState::parse(&stack, &value)?;
            states.insert(stack, state);
        }
        Ok(states)
    }

    /// Records `state` as the stack's latest (creating the topic on first use).
    pub async fn write(
        &self,
        admin: &dyn BrokerAdmin,
        stack: &str,
        state: &StackState,
    ) -> Result<(), StoreError> {
        Ok(self.0.write(admin, stack, &state.to_json()).await?)
    }
}
