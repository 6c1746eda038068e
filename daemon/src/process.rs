//! The daemon's own resource use (CPU time, memory, file descriptors, start time): the figures of
//! Prometheus' standard `process_*` metrics. Outside the data flow: the collector encodes them on
//! its `/metrics` at scrape time, the agent (which serves no HTTP) reports them in every batch's
//! health. Read through `sysinfo`, so a platform it cannot read yields `None`, never an error.

use faultline_wire::ProcessStats;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Reads this process's figures; keeps its `sysinfo` state between reads.
#[derive(Debug)]
pub struct ProcessProbe {
    system: Option<System>,
    pid: Option<Pid>,
}

impl Default for ProcessProbe {
    fn default() -> Self {
        Self {
            system: System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }
}

impl ProcessProbe {
    /// The figures now, or `None` where the platform does not tell them.
    pub fn read(&mut self) -> Option<ProcessStats> {
        let (system, pid) = (self.system.as_mut()?, self.pid?);
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .without_tasks(),
        );
        let process = system.process(pid)?;
        let count = |n: Option<usize>| n.map_or(0, |n| n as u64);
        Some(ProcessStats {
            cpu_ms: process.accumulated_cpu_time(),
            resident_bytes: process.memory(),
            virtual_bytes: process.virtual_memory(),
            open_fds: count(process.open_files()),
            max_fds: count(process.open_files_limit()),
            start_time_seconds: process.start_time(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let mut probe = ProcessProbe::default();
        let stats = probe.read().unwrap();
        assert!(stats.resident_bytes > 0 && stats.virtual_bytes >= stats.resident_bytes);
        assert!(
            stats.open_fds > 0 && stats.max_fds >= stats.open_fds,
            "{stats:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(stats.start_time_seconds <= now && stats.start_time_seconds + 600 > now);
        // CPU time only grows.
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        assert!(probe.read().unwrap().cpu_ms >= stats.cpu_ms);
    }
}
