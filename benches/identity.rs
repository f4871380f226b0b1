//! Identity benchmark: N users × 6 ACL bindings each (a producer's Write and Describe on its
//! topic and IdempotentWrite on the cluster, a consumer's Read and Describe on its topic and
//! Read on its group) and one SCRAM-SHA-512 credential each, on one cluster, brought in line
//! by passes of what a KafkaUser reconcile batched per cluster does:
//!
//!   DescribeAcls (every binding) -> users::acl_plan -> CreateAcls (missing) -> DeleteAcls
//!   (extra) -> DescribeUserScramCredentials (every user) -> AlterUserScramCredentials (the
//!   users without a credential)
//!
//! each step one request for all users (none when it has nothing to do). Printed per pass: wall
//! time, broker requests by API and outcome, and what was refused; the same at a tenth of the
//! users, so that the request count can be seen not to grow with the number of users.
//!
//! Against Tansu 0.6 (the default broker) CreateAcls is refused before it is sent (Tansu lists
//! it but answers without results, which would abort librdkafka; see kafka::identity), DeleteAcls
//! is unsupported, and no ACL or credential is kept, so every pass plans the same again: the
//! figures are those of the reads and of the refusals. The same passes against the in-memory
//! double (labelled `memory`) show the full path: created on the first pass, nothing on the
//! second, one drift repaired on the third. Nothing is asserted.
//!
//! Broker: `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here (see
//! tests/support/broker.rs). `TRIBUTARY_BENCH_USERS` changes 500. Run with
//! `cargo bench --bench identity`.

#[path = "../tests/support/broker.rs"]
mod broker;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tributary::kafka::identity::memory::MemoryIdentity;
use tributary::kafka::identity::{
    user_principal, AclBinding, AclOperation, AclResourceType, IdentityAdmin, ScramMechanism,
    ScramUpsert, CLUSTER_RESOURCE_NAME,
};
use tributary::kafka::{BrokerError, ClientSettings, RdKafkaAdmin, RequestTally, Sensitive};
use tributary::users::acl_plan::{plan, DesiredAcls};

const TIMEOUT: Duration = Duration::from_secs(60);

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// `users` users of run `tag`, 6 bindings each.
fn desired(tag: &str, users: usize) -> (Vec<String>, DesiredAcls) {
    use AclOperation::*;
    use AclResourceType::*;
    let names: Vec<String> = (0..users).map(|i| format!("{tag}-u{i:04}")).collect();
    let mut desired = DesiredAcls::new();
    for (i, name) in names.iter().enumerate() {
        let p = user_principal(name);
        let (out, input, group) = (
            format!("{tag}-out{i:04}"),
            format!("{tag}-in{i:04}"),
            format!("{tag}-g{i:04}"),
        );
        for b in [
            AclBinding::allow(&p, Write, Topic, &out),
            AclBinding::allow(&p, Describe, Topic, &out),
            AclBinding::allow(&p, IdempotentWrite, Cluster, CLUSTER_RESOURCE_NAME),
            AclBinding::allow(&p, Read, Topic, &input),
            AclBinding::allow(&p, Describe, Topic, &input),
            AclBinding::allow(&p, Read, Group, &group),
        ] {
            desired.grant(b);
        }
    }
    (names, desired)
}

/// What one pass did.
struct Pass {
    took: Duration,
    requests: RequestTally,
    created: usize,
    deleted: usize,
    credentials_set: usize,
    refused: BTreeSet<String>,
}

/// One pass: ACLs then credentials, each step one batched request. A step the broker refuses
/// whole is noted and the rest goes ahead.
async fn pass(admin: &dyn IdentityAdmin, users: &[String], desired: &DesiredAcls) -> Pass {
    let start = Instant::now();
    let mut requests = RequestTally::default();
    let mut refused = BTreeSet::new();
    let mut note = |e: BrokerError| {
        refused.insert(match &e {
            BrokerError::Unsupported { api, .. } => format!("{api} unsupported"),
            other => other.to_string(),
        });
    };
    let (mut created, mut deleted, mut credentials_set) = (0, 0, 0);
    match admin.describe_acls_tallied(&mut requests).await {
        Ok(listing) => {
            let p = plan(desired, &listing.bindings);
            match admin.create_acls_tallied(&p.create, &mut requests).await {
                Ok(out) => created = out.iter().filter(|o| o.result.is_ok()).count(),
                Err(e) => note(e),
            }
            match admin.delete_acls_tallied(&p.delete, &mut requests).await {
                Ok(out) => deleted = out.iter().filter(|o| o.result.is_ok()).count(),
                Err(e) => note(e),
            }
        }
        Err(e) => note(e),
    }
    match admin.describe_scram_tallied(users, &mut requests).await {
        Ok(described) => {
            let upserts: Vec<ScramUpsert> = described
                .iter()
                .filter(|d| d.result.as_ref().is_ok_and(|c| c.is_empty()))
                .map(|d| ScramUpsert {
                    user: d.user.clone(),
                    mechanism: ScramMechanism::Sha512,
                    iterations: 4096,
                    password: Sensitive::new(format!("password-of-{}", d.user)),
                })
                .collect();
            match admin
                .alter_scram_tallied(&upserts, &[], &mut requests)
                .await
            {
                Ok(out) => credentials_set = out.iter().filter(|o| o.result.is_ok()).count(),
                Err(e) => note(e),
            }
        }
        Err(e) => note(e),
    }
    Pass {
        took: start.elapsed(),
        requests,
        created,
        deleted,
        credentials_set,
        refused,
    }
}

fn print(broker: &str, users: usize, bindings: usize, n: usize, p: &Pass) {
    let by_api: Vec<String> = p
        .requests
        .counts()
        .map(|(api, result, n)| format!("{api}:{result}={n}"))
        .collect();
    println!(
        "{broker:<7} {users:>6} {bindings:>8} {n:>5} {:>9.1} {:>9} {:>8} {:>8} {:>8}  {} {}",
        p.took.as_secs_f64() * 1000.0,
        p.requests.total(),
        p.created,
        p.deleted,
        p.credentials_set,
        by_api.join(" "),
        if p.refused.is_empty() {
            String::new()
        } else {
            format!(
                "refused: {}",
                p.refused.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        },
    );
}

#[tokio::main]
async fn main() {
    let users = env_usize("TRIBUTARY_BENCH_USERS", 500);
    let broker = broker::broker();
    let label = if broker.is_tansu { "tansu" } else { "kafka" };
    println!(
        "identity bench: users x 6 ACL bindings + 1 SCRAM credential each, on one cluster ({label} at {})",
        broker.bootstrap
    );
    println!(
        "{:<7} {:>6} {:>8} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8}  requests by API",
        "broker", "users", "bindings", "pass", "ms", "requests", "created", "deleted", "scram"
    );
    let tag = format!("idb{}", std::process::id());
    for (i, n) in [(users / 10).max(1), users].into_iter().enumerate() {
        let (names, desired) = desired(&format!("{tag}-{i}"), n);
        let bindings = desired.bindings().count();
        // A fresh client per size: its first pass includes the one-time ApiVersions probe.
        let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(&broker.bootstrap, TIMEOUT))
            .unwrap()
            .identity_admin();
        for k in 1..=2 {
            print(label, n, bindings, k, &pass(&admin, &names, &desired).await);
        }

        let memory = MemoryIdentity::new();
        for k in 1..=2 {
            print(
                "memory",
                n,
                bindings,
                k,
                &pass(&memory, &names, &desired).await,
            );
        }
        // Drift: one binding removed and one added by hand for a managed principal.
        let first = desired.bindings().next().unwrap().clone();
        memory.remove_by_hand(&first);
        memory.add_by_hand(AclBinding::allow(
            &first.principal,
            AclOperation::All,
            AclResourceType::Topic,
            "*",
        ));
        print(
            "memory",
            n,
            bindings,
            3,
            &pass(&memory, &names, &desired).await,
        );
    }
}
