//! The operator process.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub(crate) fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU seconds of a process (fields 14 and 15 of /proc/PID/stat).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds of this process's threads named `name` (/proc/self/task/*/comm).
pub(crate) fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| stat_cpu(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// CPU seconds so far: the operator, this whole bench process, and within it the API-server
/// emulator's thread and the broker double's thread.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuMark {
    pub(crate) operator: f64,
    pub(crate) bench: f64,
    pub(crate) emulator: f64,
    pub(crate) double: f64,
}

impl CpuMark {
    pub(crate) fn now(operator_pid: u32, emulator_thread: &str) -> Self {
        Self {
            operator: cpu_seconds(operator_pid).unwrap_or(0.0),
            bench: cpu_seconds(std::process::id()).unwrap_or(0.0),
            emulator: thread_cpu_seconds(emulator_thread),
            double: thread_cpu_seconds(crate::double::THREAD),
        }
    }

    /// What was spent from `earlier` to `self`; `bench` is the bench's own share (the process
    /// less the emulator and the double).
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        let emulator = self.emulator - earlier.emulator;
        let double = self.double - earlier.double;
        Self {
            operator: self.operator - earlier.operator,
            bench: (self.bench - earlier.bench) - emulator - double,
            emulator,
            double,
        }
    }
}

fn stat_cpu(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(100.0)
    })
}

/// Kills the operator if the bench ends early (a panic included).
pub(crate) struct Guard(pub(crate) Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then wait (SIGKILL after 30 s); how long it took and how it ended.
pub(crate) fn stop(child: &mut Child) -> (Duration, String) {
    let start = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (start.elapsed(), status.to_string()),
            Ok(None) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return (start.elapsed(), format!("killed after 30 s ({status})"));
            }
        }
    }
}
