//! Who claims which principal. Two KafkaUsers of one namespace may name the same principal on
//! the same cluster; the oldest claimant (by creation time, then name) keeps it and the others
//! report `ResourceConflict` and change nothing. A claimant being deleted no longer counts (but
//! is still told it is not the owner, so its cleanup leaves the owner's ACLs alone).
//!
//! [`Claims`] is an index of the KafkaUser watch by (namespace, clusterRef, principal), kept in
//! step with every watch event ([`crate::runtime::Index`]): a reconcile asks in O(log n)
//! instead of scanning the cache (the same rule as the topic room's claims).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher::Event;
use kube::ResourceExt;

use super::desired::claimed_principal;
use crate::api::KafkaUser;
use crate::runtime::Index;

/// (namespace, clusterRef, principal).
type Key = (String, String, String);

/// A claimant, ordered by rank: creation time, then name, then uid.
type Claimant = (Option<Timestamp>, String, Option<String>);

fn key(user: &KafkaUser) -> Option<Key> {
    Some((
        user.metadata.namespace.clone().unwrap_or_default(),
        user.spec.cluster_ref.clone(),
        claimed_principal(user)?,
    ))
}

fn claimant(user: &KafkaUser) -> Claimant {
    (
        user.metadata.creation_timestamp.as_ref().map(|t| t.0),
        user.name_any(),
        user.metadata.uid.clone(),
    )
}

/// The claims of the KafkaUsers one watch holds.
#[derive(Debug, Default)]
pub struct Claims {
    live: RwLock<State>,
    relisting: Mutex<Option<State>>,
}

#[derive(Debug, Default)]
struct State {
    claims: HashMap<Key, BTreeSet<Claimant>>,
    /// (namespace, name) → where it is filed.
    filed: HashMap<(String, String), (Key, Claimant)>,
}

impl State {
    fn apply(&mut self, user: &KafkaUser) {
        self.remove(user);
        if user.metadata.deletion_timestamp.is_some() {
            return;
        }
        let Some(key) = key(user) else {
            return;
        };
        let c = claimant(user);
        self.claims
            .entry(key.clone())
            .or_default()
            .insert(c.clone());
        self.filed
            .insert((key.0.clone(), user.name_any()), (key, c));
    }

    fn remove(&mut self, user: &KafkaUser) {
        let id = (
            user.metadata.namespace.clone().unwrap_or_default(),
            user.name_any(),
        );
        if let Some((key, c)) = self.filed.remove(&id) {
            if let Some(set) = self.claims.get_mut(&key) {
                set.remove(&c);
                if set.is_empty() {
                    self.claims.remove(&key);
                }
            }
        }
    }
}

impl Claims {
    /// The KafkaUser that owns `user`'s principal on its cluster, when it is another one.
    pub fn owner(&self, user: &KafkaUser) -> Option<String> {
        let key = key(user)?;
        let live = self.live.read().unwrap();
        let mine = claimant(user);
        let first = live
            .claims
            .get(&key)?
            .iter()
            .find(|c| c.2 != user.metadata.uid)?;
        ((first.0, &first.1) < (mine.0, &mine.1)).then(|| first.1.clone())
    }
}

impl Claims {
    /// Another KafkaUser (not being deleted) that claims `user`'s principal on its cluster,
    /// older or newer: the oldest of them. A user being deleted leaves the principal's ACLs
    /// and credentials to it.
    pub fn other_claimant(&self, user: &KafkaUser) -> Option<String> {
        let key = key(user)?;
        let live = self.live.read().unwrap();
        live.claims
            .get(&key)?
            .iter()
            .find(|c| c.2 != user.metadata.uid)
            .map(|c| c.1.clone())
    }
}

impl Index<KafkaUser> for Claims {
    fn observe(&self, event: &Event<KafkaUser>) {
        match event {
            Event::Apply(u) => self.live.write().unwrap().apply(u),
            Event::Delete(u) => self.live.write().unwrap().remove(u),
            Event::Init => *self.relisting.lock().unwrap() = Some(State::default()),
            Event::InitApply(u) => self
                .relisting
                .lock()
                .unwrap()
                .get_or_insert_with(State::default)
                .apply(u),
            Event::InitDone => {
                let listed = self.relisting.lock().unwrap().take().unwrap_or_default();
                let _old = std::mem::replace(&mut *self.live.write().unwrap(), listed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::{AuthenticationType, KafkaUserSpec, UserAuthentication};

    fn user(name: &str, user_name: Option<&str>, created: i64) -> KafkaUser {
        let mut u = KafkaUser::new(
            name,
            KafkaUserSpec {
                cluster_ref: "prod".into(),
                user_name: user_name.map(Into::into),
                authentication: UserAuthentication {
                    type_: AuthenticationType::ScramSha512,
                    secret_name: None,
                    password_from: None,
                    subject: None,
                    password: None,
                },
                authorization: None,
            },
        );
        u.metadata.namespace = Some("shop".into());
        u.metadata.uid = Some(format!("uid-{name}"));
        u.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        u
    }

    #[test]
    fn the_older_claimant_keeps_the_principal_until_it_goes() {
        let claims = Claims::default();
        let old = user("orders", None, 100);
        let new = user("orders-copy", Some("orders"), 200);
        let other = user("payments", None, 50);
        for u in [&old, &new, &other] {
            claims.observe(&Event::Apply(u.clone()));
        }
        assert_eq!(claims.owner(&new), Some("orders".into()));
        assert_eq!(claims.owner(&old), None);
        assert_eq!(claims.owner(&other), None);
        // Being deleted, the older one no longer counts; the newer one is still told.
        let mut leaving = old.clone();
        leaving.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));
        claims.observe(&Event::Apply(leaving));
        assert_eq!(claims.owner(&new), None);
        claims.observe(&Event::Apply(old.clone()));
        let mut leaving_new = new.clone();
        leaving_new.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));
        claims.observe(&Event::Apply(leaving_new.clone()));
        assert_eq!(claims.owner(&leaving_new), Some("orders".into()));
        claims.observe(&Event::Delete(old));
        assert_eq!(claims.owner(&new), None);
    }

    /// The older claimant, being deleted, leaves the principal to the newer one: its cleanup
    /// must not remove what the newer one will keep.
    #[test]
    fn a_leaving_owner_sees_the_claimant_that_takes_over() {
        let claims = Claims::default();
        let old = user("orders", None, 100);
        let new = user("orders-copy", Some("orders"), 200);
        claims.observe(&Event::Apply(old.clone()));
        assert_eq!(claims.other_claimant(&old), None);
        claims.observe(&Event::Apply(new.clone()));
        let mut leaving = old.clone();
        leaving.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));
        claims.observe(&Event::Apply(leaving.clone()));
        assert_eq!(claims.owner(&leaving), None, "no older claimant");
        assert_eq!(claims.other_claimant(&leaving), Some("orders-copy".into()));
        assert_eq!(claims.other_claimant(&new), None);
    }

    #[test]
    fn other_clusters_and_namespaces_do_not_conflict_and_a_relist_replaces() {
        let claims = Claims::default();
        let a = user("orders", None, 100);
        let mut b = user("orders-dev", Some("orders"), 200);
        b.spec.cluster_ref = "dev".into();
        let mut c = user("orders", None, 50);
        c.metadata.namespace = Some("other".into());
        c.metadata.uid = Some("uid-c".into());
        for u in [&a, &b, &c] {
            claims.observe(&Event::Apply(u.clone()));
        }
        assert_eq!(claims.owner(&a), None);
        assert_eq!(claims.owner(&b), None);
        assert_eq!(claims.owner(&c), None);
        let late = user("late", Some("orders"), 300);
        assert_eq!(claims.owner(&late), Some("orders".into()));
        claims.observe(&Event::Init);
        claims.observe(&Event::InitApply(late.clone()));
        assert_eq!(
            claims.owner(&late),
            Some("orders".into()),
            "until the relist is done"
        );
        claims.observe(&Event::InitDone);
        assert_eq!(claims.owner(&late), None);
    }
}
