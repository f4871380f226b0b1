//! Objects as the API server holds them, which need not be what the CRD schema promises (a CRD
//! installed by an older version, an `x-kubernetes-preserve-unknown-fields` gap, a direct write
//! to etcd). One such object must not take the watch of its kind down (a list fails as a whole
//! when one item does not deserialize: every controller of the kind would stop, and the
//! operator would crash-loop on readiness) nor print its values in a log (a credential in the
//! wrong place).
//!
//! Every watch therefore reads [`Checked`] objects: each is checked against its CRD's schema
//! (`model::shape`) and typed, or refused with every problem under its field path. A refused
//! object never reaches the controllers (a version of it they knew is taken from the cache, as
//! if deleted: they must not act on a spec that is no longer there); a Tributary object gets
//! `Ready=False, reason InvalidSpec` with its problems in its status, and a warning in the log
//! naming the fields, never their values. Fixing the object brings it back.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::status::{apply_verdict, now, Verdict};
use super::FIELD_MANAGER;
use crate::api::{Condition, Reason, GROUP};
use crate::model::{shape, FieldError};

/// One object of kind `K` as read from the API server: typed, or refused.
#[derive(Clone, Debug)]
pub struct Checked<K>(pub Result<K, Box<Refused>>);

/// An object that is not what its kind's schema promises.
#[derive(Clone, Debug)]
pub struct Refused {
    pub metadata: ObjectMeta,
    /// Every problem, each under its field path, without the values.
    pub problems: Vec<FieldError>,
    /// The conditions its status holds (to write the refusal only once).
    conditions: Vec<Condition>,
}

impl<K: Resource> Resource for Checked<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn metadata_api() -> bool {
        K::metadata_api()
    }
    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(k) => k.meta(),
            Err(r) => &r.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.0 {
            Ok(k) => k.meta_mut(),
            Err(r) => &mut r.metadata,
        }
    }
}

impl<'de, K> Deserialize<'de> for Checked<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Checked(check::<K>(Value::deserialize(d)?)))
    }
}

/// Checks one object of kind `K`: against its CRD's schema when it is a Tributary kind, then
/// typed. The status is Tributary's own writing and is not held to the schema of this version.
pub fn check<K>(mut value: Value) -> Result<K, Box<Refused>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let schema = (K::group(&()) == GROUP && !K::metadata_api())
        .then(|| crate::api::crds::schema(&K::kind(&())))
        .flatten();
    let metadata: ObjectMeta = value
        .get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let status = value.as_object_mut().and_then(|o| o.remove("status"));
    let checked = shape::parse::<Value>(value, schema);
    let refused = |problems: Vec<FieldError>, status: Option<&Value>| {
        Box::new(Refused {
            metadata: metadata.clone(),
            problems,
            conditions: status
                .and_then(|s| s.get("conditions"))
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
        })
    };
    let mut value = match checked.value {
        Some(v) if checked.problems.is_empty() => v,
        _ => return Err(refused(checked.problems, status.as_ref())),
    };
    if let (Some(status), Some(object)) = (&status, value.as_object_mut()) {
        object.insert("status".into(), status.clone());
    }
    match shape::parse::<K>(value.clone(), None) {
        Parsed {
            value: Some(k),
            problems,
            ..
        } if problems.is_empty() => Ok(k),
        // A status an older version wrote that this one cannot read: the object without it.
        _ if status.is_some() => {
            if let Some(object) = value.as_object_mut() {
                object.remove("status");
            }
            let again = shape::parse::<K>(value, None);
            match again.value {
                Some(k) if again.problems.is_empty() => Ok(k),
                _ => Err(refused(again.problems, status.as_ref())),
            }
        }
        Parsed { problems, .. } => Err(refused(problems, status.as_ref())),
    }
}

use shape::Parsed;

/// What is done with a refused object: a warning, and for a Tributary kind its status.
#[derive(Clone)]
pub struct Refusals {
    /// `None`: only the warning (tests).
    pub client: Option<Client>,
}

impl Refusals {
    fn refused<K: Resource<DynamicType = ()>>(&self, refused: Box<Refused>) {
        let kind = K::kind(&());
        let name = refused.metadata.name.clone().unwrap_or_default();
        let namespace = refused.metadata.namespace.clone().unwrap_or_default();
        let message = FieldError::join(&refused.problems);
        tracing::warn!(
            kind = %kind, %namespace, %name, problems = %message,
            "object refused: it is not what its kind's schema says; fix the fields named"
        );
        let Some(client) = &self.client else {
            return;
        };
        if K::group(&()) != GROUP || K::metadata_api() {
            return;
        }
        let generation = refused.metadata.generation;
        let verdict = Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: Reason::InvalidSpec,
            message,
        };
        let mut conditions = refused.conditions.clone();
        apply_verdict(&mut conditions, &verdict, generation, &now());
        if conditions == refused.conditions {
            return;
        }
        let resource = ApiResource::erase::<K>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let patch = serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "status": {"observedGeneration": generation, "conditions": conditions},
        });
        tokio::spawn(async move {
            let params = PatchParams::apply(FIELD_MANAGER).force();
            if let Err(e) = api
                .patch_status(&name, &params, &Patch::Apply(&patch))
                .await
            {
                tracing::warn!(kind = %resource.kind, %namespace, %name, error = %e, "could not write InvalidSpec to a refused object's status");
            }
        });
    }
}

/// The events of a watch of [`Checked`] objects as events of `K`: refused objects are reported
/// and left out, and a version of one that `cache` (the watch's own cache, set once it exists)
/// still holds is taken out as if deleted.
pub fn valid_events<K>(
    events: impl Stream<Item = watcher::Result<Event<Checked<K>>>> + Send + 'static,
    cache: Arc<OnceLock<Store<K>>>,
    refusals: Refusals,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let cached = move |meta: &ObjectMeta| {
        let store = cache.get()?;
        let key = ObjectRef::<K>::new(meta.name.as_deref()?).within(meta.namespace.as_deref()?);
        store.get(&key).map(|k| (*k).clone())
    };
    events.filter_map(move |event| {
        let out = match event {
            Err(e) => Some(Err(e)),
            Ok(Event::Init) => Some(Ok(Event::Init)),
            Ok(Event::InitDone) => Some(Ok(Event::InitDone)),
            Ok(Event::InitApply(Checked(Ok(k)))) => Some(Ok(Event::InitApply(k))),
            Ok(Event::Apply(Checked(Ok(k)))) => Some(Ok(Event::Apply(k))),
            Ok(Event::Delete(Checked(Ok(k)))) => Some(Ok(Event::Delete(k))),
            // Left out of the relist: the cache it builds will not hold it.
            Ok(Event::InitApply(Checked(Err(r)))) => {
                refusals.refused::<K>(r);
                None
            }
            Ok(Event::Apply(Checked(Err(r)))) => {
                let stale = cached(&r.metadata);
                refusals.refused::<K>(r);
                stale.map(|k| Ok(Event::Delete(k)))
            }
            Ok(Event::Delete(Checked(Err(r)))) => cached(&r.metadata).map(|k| Ok(Event::Delete(k))),
        };
        futures::future::ready(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{KafkaCluster, KafkaTopic};
    use serde_json::json;

    fn topic(spec: Value) -> Value {
        json!({"apiVersion": "tributary.io/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": "orders", "namespace": "shop", "generation": 3},
            "spec": spec,
            "status": {"conditions": [], "topicName": "orders"}})
    }

    /// Issue #11, hostile input: wrong types inside spec, as a list item the watch reads.
    #[test]
    fn a_spec_of_the_wrong_shape_is_refused_with_every_field() {
        let value = topic(json!({"clusterRef": 7, "partitions": "six",
            "deletionPolicy": "Purge", "config": {"retention.ms": 5}}));
        let refused = check::<KafkaTopic>(value).unwrap_err();
        let problems: Vec<String> = refused.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "spec.clusterRef: must be a string, got an integer",
                "spec.config.retention.ms: must be a string, got an integer",
                "spec.deletionPolicy: must be one of Retain, Delete",
                "spec.partitions: must be an integer from -2147483648 to 2147483647, got a string",
            ]
        );
        assert_eq!(refused.metadata.name.as_deref(), Some("orders"));
        // A whole list holding it still deserializes: the watch is not taken down.
        let list: Vec<Checked<KafkaTopic>> = serde_json::from_value(json!([
            topic(json!({"clusterRef": "local", "partitions": 3})),
            topic(json!({"clusterRef": "local", "partitions": "six"})),
        ]))
        .unwrap();
        assert!(list[0].0.is_ok());
        assert!(list[1].0.is_err());
    }

    #[test]
    fn a_secret_in_the_wrong_place_is_not_repeated() {
        let value = json!({"apiVersion": "tributary.io/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "c", "namespace": "shop"},
            "spec": {"bootstrapServers": ["k:9092"],
                "sasl": {"mechanism": "PLAIN", "username": {"value": "u"}, "password": "hunter2"}}});
        let refused = check::<KafkaCluster>(value).unwrap_err();
        let message = FieldError::join(&refused.problems);
        assert_eq!(
            message,
            "spec.sasl.password: must be a mapping with one of value, secretKeyRef, file, got a string"
        );
    }

    #[test]
    fn huge_maps_and_lists_are_refused_with_a_bounded_message() {
        let config: serde_json::Map<String, Value> =
            (0..100_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let refused = check::<KafkaTopic>(topic(
            json!({"clusterRef": "c", "partitions": 1, "config": config}),
        ))
        .unwrap_err();
        assert_eq!(refused.problems.len(), shape::MAX_REPORTED + 1);
        assert!(FieldError::join(&refused.problems).len() < 5_000);
    }

    /// A valid object edited into a misfit leaves the controllers (taken out of the cache as if
    /// deleted) rather than being acted on in its stale version.
    #[tokio::test]
    async fn a_misfit_edit_takes_the_known_version_out() {
        let (store, mut writer) = kube::runtime::reflector::store::<KafkaTopic>();
        let valid = topic(json!({"clusterRef": "c", "partitions": 1}));
        let known = check::<KafkaTopic>(valid.clone()).unwrap();
        writer.apply_watcher_event(&Event::Apply(known.clone()));
        let cache = Arc::new(OnceLock::new());
        cache.set(store).unwrap();
        let misfit: Checked<KafkaTopic> =
            serde_json::from_value(topic(json!({"clusterRef": "c", "partitions": "x"}))).unwrap();
        let other: Checked<KafkaTopic> = serde_json::from_value(
            json!({"metadata": {"name": "new", "namespace": "shop"}, "spec": {"partitions": []}}),
        )
        .unwrap();
        let events = futures::stream::iter([
            Ok(Event::Apply(misfit)),
            Ok(Event::InitApply(other)),
            Ok(Event::Apply(serde_json::from_value(valid).unwrap())),
        ]);
        let out: Vec<_> = valid_events(events, cache, Refusals { client: None })
            .collect()
            .await;
        assert_eq!(out.len(), 2, "the misfit with no known version is left out");
        assert!(matches!(&out[0], Ok(Event::Delete(k)) if *k == known));
        assert!(matches!(&out[1], Ok(Event::Apply(k)) if *k == known));
    }

    #[test]
    fn a_valid_object_keeps_its_status() {
        let k = check::<KafkaTopic>(topic(json!({"clusterRef": "c", "partitions": 1}))).unwrap();
        assert_eq!(k.status.unwrap().topic_name.as_deref(), Some("orders"));
        // A status this version cannot read does not refuse the object.
        let mut value = topic(json!({"clusterRef": "c", "partitions": 1}));
        value["status"] = json!({"conditions": "garbled"});
        let k = check::<KafkaTopic>(value).unwrap();
        assert!(k.status.is_none());
    }
}
