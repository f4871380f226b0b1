//! A Kafka-protocol broker for tests: the one named by `TRIBUTARY_TEST_BOOTSTRAP`, or else a
//! Tansu started once per test binary on a free loopback port.
//!
//! Cleanup does not depend on destructors (statics are never dropped): Tansu runs under a small
//! shell guard that holds the read end of a pipe from this process and kills Tansu as soon as
//! the pipe closes, which the kernel does when the test process exits for any reason, panics
//! and kills included.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running broker.
pub struct TestBroker {
    pub bootstrap: String,
    /// Present when this process started the broker.
    guard: Option<Mutex<(Child, ChildStdin)>>,
    /// True when the broker is the one the harness started (Tansu).
    pub is_tansu: bool,
}

static BROKER: OnceLock<TestBroker> = OnceLock::new();

/// The broker of this test binary, started on first use.
pub fn broker() -> &'static TestBroker {
    BROKER.get_or_init(|| match std::env::var("TRIBUTARY_TEST_BOOTSTRAP") {
        Ok(bootstrap) if !bootstrap.trim().is_empty() => TestBroker {
            bootstrap: bootstrap.trim().to_owned(),
            guard: None,
            is_tansu: false,
        },
        _ => start_tansu(),
    })
}

/// Where the Tansu binary is: `TANSU_BIN`, the repository's `.tansu/bin/tansu` (made by
/// `scripts/install-tansu.sh`), or `tansu` on `PATH`.
pub fn tansu_binary() -> PathBuf {
    tansu_binary_opt().unwrap_or_else(|| {
        panic!("no Kafka broker for the tests: run scripts/install-tansu.sh, set TANSU_BIN, or set TRIBUTARY_TEST_BOOTSTRAP=host:port")
    })
}

/// [`tansu_binary`], or `None` when there is none.
pub fn tansu_binary_opt() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tansu/bin/tansu");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.exists())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_tansu() -> TestBroker {
    let port = free_port();
    let (child, stdin) = spawn_guarded_tansu(port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(addr, Duration::from_secs(20));
    TestBroker {
        bootstrap: addr.to_string(),
        guard: Some(Mutex::new((child, stdin))),
        is_tansu: true,
    }
}

/// Starts Tansu on `port` under the pipe guard; returns the guard and the pipe's write end.
pub fn spawn_guarded_tansu(port: u16) -> (Child, ChildStdin) {
    spawn_guarded_tansu_at(port, &format!("127.0.0.1:{port}"))
}

/// Starts Tansu listening on `port` and advertising `advertised` (`host:port`, e.g. a proxy in
/// front of it) under the pipe guard; returns the guard and the pipe's write end.
pub fn spawn_guarded_tansu_at(port: u16, advertised: &str) -> (Child, ChildStdin) {
    let bin = tansu_binary();
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised = format!("tcp://{advertised}");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" broker --listener-url "$1" --advertised-listener-url "$2" --storage-engine memory://tansu/ </dev/null >/dev/null 2>&1 & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0"#)
        .arg(&bin)
        .arg(&url)
        .arg(&advertised)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Stops a guarded Tansu and waits for it to be gone.
pub fn stop_guarded((mut child, mut stdin): (Child, ChildStdin)) {
    let _ = stdin.write_all(b"stop\n");
    drop(stdin);
    let _ = child.wait();
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for(addr: SocketAddr, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < limit,
            "broker on {addr} did not start within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A topic name unique within this test run, so tests can share one broker.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
