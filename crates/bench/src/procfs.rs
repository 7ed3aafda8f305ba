//! What /proc says about where the time went: CPU of the server, of this client and of
//! PostgreSQL's processes; the whole machine's busy and iowait time (to see interference
//! from anything else running); bytes written and disk flushes. Linux only; on any read
//! error the figure is left out rather than failing the run.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&s).map(|t| t as f64 / clk_tck())
}

/// Fields 14 and 15 of /proc/PID/stat, counted after the `)` that closes the command name
/// (which may itself hold spaces and parentheses).
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// What one thread did: CPU seconds, and how often it gave up the CPU by itself (to wait
/// for work, a lock or I/O) or was preempted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ThreadFigures {
    cpu_s: f64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

/// Every thread of a process, keyed by (thread id, name: `tokio-runtime-w`,
/// `sqlx-sqlite-wor`...; Linux keeps 15 characters of it).
fn threads(pid: u32) -> HashMap<(u32, String), ThreadFigures> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    let tck = clk_tck();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|tid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
                .unwrap_or_default();
            let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
            let count = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            Some((
                (tid, name),
                ThreadFigures {
                    cpu_s: parse_stat_cpu_ticks(&stat)? as f64 / tck,
                    voluntary_switches: count("voluntary_ctxt_switches"),
                    involuntary_switches: count("nonvoluntary_ctxt_switches"),
                },
            ))
        })
        .collect()
}

/// A `VmHWM:`/`VmRSS:` line of /proc/PID/status, in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `write_bytes` (reached the block layer) and `syscw` (write syscalls) of /proc/PID/io.
fn io(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(": "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((get("write_bytes")?, get("syscw")?))
}

/// Every process whose command name is `postgres` (the postmaster, its backends, WAL
/// writer, checkpointer...). Machine-wide: other people's sessions count too.
fn postgres_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "postgres")
                .unwrap_or(false)
        })
        .collect()
}

/// Jiffies of all CPUs, from the first line of /proc/stat.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Jiffies {
    /// user + nice + system + irq + softirq
    busy: u64,
    iowait: u64,
    /// Time the hypervisor ran something else while this VM wanted the CPU.
    steal: u64,
    total: u64,
}

fn machine_jiffies() -> Option<Jiffies> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_jiffies(s.lines().next()?)
}

fn parse_machine_jiffies(cpu_line: &str) -> Option<Jiffies> {
    let mut it = cpu_line.split_whitespace();
    if it.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, inside user/nice]
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    Some(Jiffies {
        busy,
        iowait: get(4),
        steal: get(7),
        total: busy + get(3) + get(4) + get(7),
    })
}

/// Device number (major, minor) of the file system holding `path`.
pub fn device_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Some((major, minor))
}

/// (name, writes completed, sectors written, flushes completed) of a block device.
fn disk(dev: (u64, u64)) -> Option<(String, u64, u64, u64)> {
    let s = std::fs::read_to_string("/proc/diskstats").ok()?;
    s.lines().find_map(|l| parse_diskstats_line(l, dev))
}

fn parse_diskstats_line(line: &str, dev: (u64, u64)) -> Option<(String, u64, u64, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.first()?.parse::<u64>().ok()? != dev.0 || f.get(1)?.parse::<u64>().ok()? != dev.1 {
        return None;
    }
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
    // 3 reads, 7 writes completed, 9 sectors written, 18 flushes completed (Linux 5.5+).
    Some((f[2].to_owned(), n(7)?, n(9)?, n(18).unwrap_or(0)))
}

/// What one process or group of processes did.
#[derive(Clone, Copy, Debug, Default)]
struct ProcFigures {
    cpu_s: f64,
    write_bytes: u64,
    syscw: u64,
}

fn proc_figures(pid: u32) -> Option<ProcFigures> {
    let (write_bytes, syscw) = io(pid).unwrap_or((0, 0));
    Some(ProcFigures {
        cpu_s: cpu_secs(pid)?,
        write_bytes,
        syscw,
    })
}

/// A reading of everything above at one instant.
pub struct Snapshot {
    at: Instant,
    server: Option<(u32, ProcFigures)>,
    server_threads: HashMap<(u32, String), ThreadFigures>,
    client: Option<ProcFigures>,
    postgres: HashMap<u32, ProcFigures>,
    machine: Option<Jiffies>,
    disk: Option<(String, u64, u64, u64)>,
}

impl Snapshot {
    pub fn take(server_pid: Option<u32>, disk_dev: Option<(u64, u64)>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            server: server_pid.and_then(|p| Some((p, proc_figures(p)?))),
            server_threads: server_pid.map(threads).unwrap_or_default(),
            client: proc_figures(std::process::id()),
            postgres: postgres_pids()
                .into_iter()
                .filter_map(|p| Some((p, proc_figures(p)?)))
                .collect(),
            machine: machine_jiffies(),
            disk: disk_dev.and_then(disk),
        }
    }

    /// What happened between `start` and `self`, as JSON for the report.
    pub fn since(&self, start: &Snapshot) -> Usage {
        let wall = self.at.duration_since(start.at);
        let tck = clk_tck();
        let server = match (&start.server, &self.server) {
            (Some((p0, a)), Some((p1, b))) if p0 == p1 => Some(diff(a, b)),
            _ => None,
        };
        // Threads that started during the phase count from zero.
        let mut threads: Vec<(u32, String, ThreadFigures)> = self
            .server_threads
            .iter()
            .map(|(key, b)| {
                let a = start.server_threads.get(key).copied().unwrap_or_default();
                let d = ThreadFigures {
                    cpu_s: (b.cpu_s - a.cpu_s).max(0.0),
                    voluntary_switches: b.voluntary_switches.saturating_sub(a.voluntary_switches),
                    involuntary_switches: b
                        .involuntary_switches
                        .saturating_sub(a.involuntary_switches),
                };
                (key.0, key.1.clone(), d)
            })
            .collect();
        threads.sort_by(|x, y| y.2.cpu_s.total_cmp(&x.2.cpu_s));
        let client = match (&start.client, &self.client) {
            (Some(a), Some(b)) => Some(diff(a, b)),
            _ => None,
        };
        // Processes that started during the phase count from zero; ones that ended are lost.
        let mut pg = ProcFigures::default();
        for (pid, b) in &self.postgres {
            let d = diff(&start.postgres.get(pid).copied().unwrap_or_default(), b);
            pg.cpu_s += d.cpu_s;
            pg.write_bytes += d.write_bytes;
            pg.syscw += d.syscw;
        }
        let pg = (!self.postgres.is_empty()).then_some(pg);
        let machine = match (start.machine, self.machine) {
            (Some(a), Some(b)) => Some(MachineSecs {
                busy: b.busy.saturating_sub(a.busy) as f64 / tck,
                iowait: b.iowait.saturating_sub(a.iowait) as f64 / tck,
                steal: b.steal.saturating_sub(a.steal) as f64 / tck,
                total: b.total.saturating_sub(a.total) as f64 / tck,
            }),
            _ => None,
        };
        let disk = match (&start.disk, &self.disk) {
            (Some(a), Some(b)) => Some((a.0.clone(), b.1 - a.1, b.2 - a.2, b.3 - a.3)),
            _ => None,
        };
        Usage {
            wall,
            server,
            server_threads: threads,
            client,
            postgres: pg,
            machine,
            disk,
        }
    }
}

fn diff(a: &ProcFigures, b: &ProcFigures) -> ProcFigures {
    ProcFigures {
        cpu_s: (b.cpu_s - a.cpu_s).max(0.0),
        write_bytes: b.write_bytes.saturating_sub(a.write_bytes),
        syscw: b.syscw.saturating_sub(a.syscw),
    }
}

/// CPU-seconds over all cores.
#[derive(Clone, Copy, Debug)]
struct MachineSecs {
    busy: f64,
    iowait: f64,
    steal: f64,
    total: f64,
}

pub struct Usage {
    wall: Duration,
    server: Option<ProcFigures>,
    /// (thread id, thread name, figures), busiest first.
    server_threads: Vec<(u32, String, ThreadFigures)>,
    client: Option<ProcFigures>,
    postgres: Option<ProcFigures>,
    machine: Option<MachineSecs>,
    /// (device, writes, sectors written, flushes).
    disk: Option<(String, u64, u64, u64)>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Usage {
    pub fn server_cpu_s(&self) -> Option<f64> {
        self.server.map(|s| s.cpu_s)
    }
    pub fn client_cpu_s(&self) -> Option<f64> {
        self.client.map(|s| s.cpu_s)
    }
    pub fn postgres_cpu_s(&self) -> Option<f64> {
        self.postgres.map(|s| s.cpu_s)
    }
    pub fn machine_busy_s(&self) -> Option<f64> {
        self.machine.map(|m| m.busy)
    }
    pub fn wall_s(&self) -> f64 {
        self.wall.as_secs_f64()
    }

    /// Busy CPU-seconds not spent by the server, this client or PostgreSQL: other load.
    pub fn other_cpu_s(&self) -> Option<f64> {
        let busy = self.machine_busy_s()?;
        let ours = self.server_cpu_s().unwrap_or(0.0)
            + self.client_cpu_s().unwrap_or(0.0)
            + self.postgres_cpu_s().unwrap_or(0.0);
        Some((busy - ours).max(0.0))
    }

    pub fn to_json(&self) -> Value {
        let w = self.wall_s().max(1e-9);
        let proc_json = |p: &Option<ProcFigures>| {
            p.map(|p| {
                json!({
                    "cpu_s": round2(p.cpu_s),
                    "cores": round2(p.cpu_s / w),
                    "write_bytes": p.write_bytes,
                    "write_syscalls": p.syscw,
                })
            })
        };
        json!({
            "wall_s": round2(self.wall_s()),
            "server": proc_json(&self.server),
            "server_threads": self.server_threads.iter().map(|(tid, name, t)| json!({
                "tid": tid, "name": name, "cpu_s": round2(t.cpu_s), "cores": round2(t.cpu_s / w),
                "voluntary_switches": t.voluntary_switches,
                "involuntary_switches": t.involuntary_switches,
            })).collect::<Vec<_>>(),
            "client": proc_json(&self.client),
            "postgres_all_processes": proc_json(&self.postgres),
            "machine": self.machine.map(|m| json!({
                "busy_cpu_s": round2(m.busy),
                "busy_cores": round2(m.busy / w),
                "iowait_cpu_s": round2(m.iowait),
                "steal_cpu_s": round2(m.steal),
                "total_cpu_s": round2(m.total),
                "other_cpu_s": self.other_cpu_s().map(round2),
            })),
            "disk": self.disk.as_ref().map(|(name, writes, sectors, flushes)| json!({
                "device": name,
                "writes": writes,
                "mib_written": round2(*sectors as f64 * 512.0 / 1_048_576.0),
                "flushes": flushes,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_fields_are_read_after_the_command_name() {
        let stat =
            "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let s =
            "Name:\tpatrol-sync\nVmPeak:\t  900000 kB\nVmHWM:\t   45312 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM"), Some(45_312));
        assert_eq!(parse_status_kib(s, "VmRSS"), Some(40_000));
        assert_eq!(parse_status_kib(s, "VmSwap"), None);
    }

    #[test]
    fn machine_jiffies_split_busy_iowait_and_idle() {
        let l = "cpu  100 5 50 1000 20 3 2 1 0 0";
        assert_eq!(
            parse_machine_jiffies(l),
            Some(Jiffies {
                busy: 160,
                iowait: 20,
                steal: 1,
                total: 1181
            })
        );
        assert_eq!(parse_machine_jiffies("cpu0 1 2 3"), None);
    }

    #[test]
    fn diskstats_pick_the_device_and_its_flushes() {
        let l = " 254       0 vda 93994 15525 12484842 172185 128053 38364 16000936 79552 0 52456 259479 36227 75 4719088 5816 39166 1925";
        assert_eq!(
            parse_diskstats_line(l, (254, 0)),
            Some(("vda".into(), 128053, 16000936, 39166))
        );
        assert_eq!(parse_diskstats_line(l, (254, 1)), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_can_be_read() {
        let me = std::process::id();
        assert!(cpu_secs(me).is_some());
        assert!(!threads(me).is_empty());
        assert!(status_kib(me, "VmHWM").unwrap() > 0);
    }
}
