//! A TLS-terminated test broker: Tansu behind `stunnel` (Debian's `stunnel4`), with a CA, a
//! server certificate for 127.0.0.1 and a client certificate made here with the `openssl` CLI.
//! Tansu's own TLS listener is not used (it did not work), so stunnel terminates TLS.
//!
//! Kafka clients bootstrap, then reconnect to the address the broker advertises in its Metadata
//! answer: each Tansu here advertises its stunnel's TLS port, so every connection goes through
//! TLS. That is why these brokers are always Tansu started here, never
//! `TRIBUTARY_TEST_BOOTSTRAP` (whose advertised address the harness cannot choose).
//!
//! Two brokers, started on first use: [`Mode::ServerOnly`] (the client checks the broker's
//! certificate) and [`Mode::Mutual`] (stunnel also requires a client certificate signed by the
//! CA). When `stunnel` or `openssl` cannot be found the tests skip with a message saying so —
//! unless `TRIBUTARY_TEST_REQUIRE_TLS=1` (set by `.ci/run`), which makes that a failure.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::broker::{free_port, tansu_binary_opt, wait_for};

/// What stunnel asks of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TLS with the server's certificate only.
    ServerOnly,
    /// Mutual TLS: a client certificate signed by the test CA is required.
    Mutual,
}

/// The certificates of the test run, as files (PEM).
pub struct Certs {
    pub dir: PathBuf,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the broker presents.
    pub wrong_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    pub fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// A broker behind stunnel.
pub struct TlsBroker {
    /// stunnel's TLS address, which Tansu advertises.
    pub bootstrap: String,
    pub mode: Mode,
    /// stunnel's log (connections, handshake failures and their reasons).
    pub log: PathBuf,
    guards: Mutex<Vec<(Child, ChildStdin)>>,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let guards = std::mem::take(&mut *self.guards.lock().unwrap_or_else(|e| e.into_inner()));
        for g in guards {
            super::broker::stop_guarded(g);
        }
    }
}

impl TlsBroker {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The stunnel binary: `STUNNEL_BIN`, else `stunnel4` or `stunnel` on `PATH`.
fn stunnel_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("STUNNEL_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    on_path(&["stunnel4", "stunnel"])
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Why the TLS tests cannot run here, if they cannot.
fn missing_tools() -> Option<String> {
    let mut missing = Vec::new();
    if stunnel_binary().is_none() {
        missing.push("stunnel (Debian package stunnel4; or set STUNNEL_BIN)");
    }
    if on_path(&["openssl"]).is_none() {
        missing.push("the openssl CLI (Debian package openssl)");
    }
    if tansu_binary_opt().is_none() {
        missing.push("Tansu (scripts/install-tansu.sh, or TANSU_BIN)");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The broker for `mode`, started on first use; `None` (after a loud message) when the tools
/// are missing and `TRIBUTARY_TEST_REQUIRE_TLS` is not set. `test` names the caller.
pub fn tls_broker(mode: Mode, test: &str) -> Option<&'static TlsBroker> {
    if let Some(missing) = missing_tools() {
        let required = std::env::var("TRIBUTARY_TEST_REQUIRE_TLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "TRIBUTARY_TEST_REQUIRE_TLS=1 but the TLS tests cannot run: missing {missing}"
        );
        // Straight to the process's stderr: the test harness captures `eprintln!` of tests that
        // pass, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: the TLS tests need {missing}; install them (apt-get install stunnel4 openssl) to run them ***\n"
        );
        return None;
    }
    static SERVER_ONLY: OnceLock<TlsBroker> = OnceLock::new();
    static MUTUAL: OnceLock<TlsBroker> = OnceLock::new();
    let cell = match mode {
        Mode::ServerOnly => &SERVER_ONLY,
        Mode::Mutual => &MUTUAL,
    };
    Some(cell.get_or_init(|| start(mode)))
}

/// The certificates of this test process, made on first use.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Those of test processes that are gone.
        for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("tls-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name);
        let certs = Certs {
            ca: path("ca.pem"),
            wrong_ca: path("wrong-ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            dir: dir.clone(),
        };
        // EC keys (P-256): quick to make, and every TLS stack takes them.
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [("ca", "Tributary test CA"), ("wrong-ca", "Some other CA")] {
            openssl(
                &dir,
                &[
                    &["req", "-x509"][..],
                    &key,
                    &[
                        "-days",
                        "2",
                        "-subj",
                        &format!("/CN={cn}"),
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.pem"),
                    ],
                ]
                .concat(),
            );
        }
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(path("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, cn, serial) in [
            ("server", "127.0.0.1", "1"),
            ("client", "tributary-test-client", "2"),
        ] {
            openssl(
                &dir,
                &[
                    &["req"][..],
                    &key,
                    &[
                        "-subj",
                        &format!("/CN={cn}"),
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                    ],
                ]
                .concat(),
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        certs
    })
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(mode: Mode) -> TlsBroker {
    let tansu_port = free_port();
    start_via(mode, tansu_port, tansu_port)
}

/// A broker of its own for `mode` (not shared with other tests): stunnel forwards to
/// `connect_port` (e.g. a proxy in front of Tansu), Tansu listens on `tansu_port` and
/// advertises stunnel's TLS port.
pub fn start_via(mode: Mode, tansu_port: u16, connect_port: u16) -> TlsBroker {
    let certs = certs();
    let tls_port = free_port();
    let tag = match mode {
        Mode::ServerOnly => "server-only",
        Mode::Mutual => "mutual",
    };
    let tag = format!("{tag}-{tls_port}");
    let log = certs.dir.join(format!("stunnel-{tag}.log"));
    let client_auth = match mode {
        Mode::ServerOnly => "",
        Mode::Mutual => "verifyChain = yes\nrequireCert = yes\n",
    };
    let config = certs.dir.join(format!("stunnel-{tag}.conf"));
    std::fs::write(
        &config,
        format!(
            "foreground = yes\npid =\noutput = {log}\ndebug = notice\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{connect_port}\ncert = {cert}\nkey = {key}\nCAfile = {ca}\n{client_auth}",
            log = log.display(),
            cert = certs.server_cert.display(),
            key = certs.server_key.display(),
            ca = certs.ca.display(),
        ),
    )
    .unwrap();
    let tansu = guarded(
        &tansu_binary_opt().unwrap(),
        &[
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{tansu_port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{tls_port}"),
            "--storage-engine",
            "memory://tansu/",
        ],
    );
    let stunnel = guarded(&stunnel_binary().unwrap(), &[config.to_str().unwrap()]);
    for port in [tansu_port, connect_port, tls_port] {
        wait_for(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(20),
        );
    }
    TlsBroker {
        bootstrap: format!("127.0.0.1:{tls_port}"),
        mode,
        log,
        guards: Mutex::new(vec![tansu, stunnel]),
    }
}

/// Runs `bin args` under the same pipe guard as the plaintext broker's Tansu: killed as soon
/// as this test process exits, however it exits.
fn guarded(bin: &Path, args: &[&str]) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$@" </dev/null >/dev/null 2>&1 & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0"#)
        .arg("guard")
        .arg(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}
