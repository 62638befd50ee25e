//! Process metrics from `/proc`: resident memory and CPU seconds, plus the open-file limit.

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub rss_kib: u64,
    pub cpu_secs: f64,
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `(utime, stime)` in clock ticks from the text of `/proc/<pid>/stat`. The command name (field 2)
/// is in parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime is field 14, stime field 15.
    let utime = fields.get(11)?.parse().ok()?;
    let stime = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// The parent's pid (field 4) from the text of `/proc/<pid>/stat`.
pub fn parse_parent_pid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) of `root` and its children: a PostgreSQL server is a postmaster
/// whose children are the backends, the WAL writer, the checkpointer and so on. Children that
/// exited before the reading are not counted (their time went to the postmaster's `cutime`,
/// which this leaves out, so the difference of two readings is not skewed by it).
pub fn tree_cpu_secs(root: u32) -> Result<f64> {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").context("read /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if (pid == root || parse_parent_pid(&stat) == Some(root))
            && let Some((u, s)) = parse_cpu_ticks(&stat)
        {
            ticks += u + s;
        }
    }
    Ok(ticks as f64 / clock_ticks())
}

/// The parent of `pid`, if it is running.
pub fn parent_pid(pid: u32) -> Option<u32> {
    parse_parent_pid(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Reads RSS and CPU seconds (user + system) of `pid`.
pub fn sample(pid: u32) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let Some(rss_kib) = parse_vm_rss(&status) else {
        bail!("no VmRSS for {pid}");
    };
    let Some((u, s)) = parse_cpu_ticks(&stat) else {
        bail!("unparsable /proc/{pid}/stat");
    };
    Ok(Sample {
        rss_kib,
        cpu_secs: (u + s) as f64 / clock_ticks(),
    })
}

/// The 1-minute load average, if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Kernel TCP socket memory in pages (the `mem` field of the `TCP:` line of `/proc/net/sockstat`).
pub fn parse_tcp_mem_pages(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "mem" {
            return it.next()?.parse().ok();
        }
    }
    None
}

/// Kernel TCP socket memory in KiB, if readable.
pub fn tcp_mem_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    parse_tcp_mem_pages(&text).map(|p| p * page / 1024)
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit not above the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tapogee\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_a_tricky_command_name() {
        let stat = "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    731 129 0 0 20 0 9 0 123456 1000000 3000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((731, 129)));
        assert_eq!(parse_parent_pid(stat), Some(1));
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_tcp_socket_memory() {
        let sockstat =
            "sockets: used 290\nTCP: inuse 12 orphan 0 tw 3 alloc 15 mem 7\nUDP: inuse 1 mem 2\n";
        assert_eq!(parse_tcp_mem_pages(sockstat), Some(7));
        assert_eq!(parse_tcp_mem_pages("UDP: inuse 1 mem 2\n"), None);
    }

    #[test]
    fn a_process_tree_includes_this_process() {
        let own = sample(std::process::id()).unwrap().cpu_secs;
        let tree = tree_cpu_secs(std::process::id()).unwrap();
        assert!(tree >= own, "{tree} < {own}");
        assert_eq!(
            parent_pid(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
