//! `KafkaUser`: an application's Kafka identity. So far the room holds [`acl_plan`], the pure
//! ACL planner (desired bindings of the managed principals × the broker's bindings → create,
//! delete); the broker calls are [`crate::kafka::identity`].

pub mod acl_plan;
