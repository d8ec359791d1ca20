//! What the benchmarks measure with: percentiles of latencies, a process's resident memory and
//! the CPU time processes used (from /proc).

use std::time::Duration;

/// The value at quantile `q` (0..=1) of `sorted`, in milliseconds (nearest rank); NaN when
/// empty (the caller says what an empty run means).
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The resident memory of process `pid` in MiB (`VmRSS` from /proc), `None` if it is gone.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user and system) process `pid` used so far, in seconds; `None` if it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports them in USER_HZ, 100 per second on every architecture it runs on.
    Some(ticks / 100.0)
}

/// The pids of the processes whose command name is `comm` (as in /proc/PID/comm).
pub fn pids_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim_end() == comm)
        })
        .collect()
}

/// CPU seconds used by groups of processes between two readings.
#[derive(Debug, Default)]
pub struct CpuUse {
    start: Vec<(String, std::collections::HashMap<u32, f64>)>,
}

impl CpuUse {
    /// Reads each group's processes now.
    pub fn start(groups: &[(String, Vec<u32>)]) -> CpuUse {
        CpuUse {
            start: groups
                .iter()
                .map(|(name, pids)| (name.clone(), read(pids)))
                .collect(),
        }
    }

    /// Each group's CPU seconds since [`CpuUse::start`], for its processes then and now (a
    /// process that started since counts from zero).
    pub fn since(&self, groups: &[(String, Vec<u32>)]) -> Vec<(String, f64)> {
        groups
            .iter()
            .map(|(name, pids)| {
                let before = self.start.iter().find(|(n, _)| n == name).map(|(_, m)| m);
                let used = read(pids)
                    .iter()
                    .map(|(pid, now)| now - before.and_then(|m| m.get(pid)).copied().unwrap_or(0.0))
                    .sum();
                (name.clone(), used)
            })
            .collect()
    }
}

fn read(pids: &[u32]) -> std::collections::HashMap<u32, f64> {
    pids.iter()
        .filter_map(|pid| cpu_seconds(*pid).map(|s| (*pid, s)))
        .collect()
}

/// The sum of every sample of the counter `name` (all its label sets) that `/metrics` at each
/// of `admins` reports; an address that does not answer counts nothing.
pub async fn counter_sum(admins: &[std::net::SocketAddr], name: &str) -> f64 {
    let mut sum = 0.0;
    for admin in admins {
        let Some((200, text)) = ferry_testkit::process::http_get(*admin, "/metrics").await else {
            continue;
        };
        sum += text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&sorted, 0.5), 51.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert!(percentile_ms(&[], 0.99).is_nan());
    }

    #[test]
    fn this_process_has_resident_memory_and_uses_cpu() {
        let me = std::process::id();
        let mib = rss_mib(me).expect("our own /proc entry");
        assert!(mib > 0.0 && mib < 100_000.0, "{mib}");
        let groups = vec![("me".to_string(), vec![me])];
        let cpu = CpuUse::start(&groups);
        // Spin until the kernel has charged us a tick (however busy the machine is).
        let began = std::time::Instant::now();
        let mut spin = 0u64;
        while cpu.since(&groups)[0].1 <= 0.0 {
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "30 s of spinning were never charged as CPU time"
            );
        }
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).expect("comm");
        assert!(pids_named(comm.trim_end()).contains(&me));
    }
}
