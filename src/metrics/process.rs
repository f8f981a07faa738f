//! The standard `process_*` metrics of the Prometheus client libraries, which
//! prometheus-client does not have: read from /proc at every scrape. The parsing of
//! `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits` and `/proc/stat` is pure
//! ([`Sample::parse`]); [`ProcessCollector`] reads the files and encodes what they say. A file
//! that cannot be read or parsed leaves its metrics out of that scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The process's texts from /proc, as read.
#[derive(Debug, Default)]
pub struct Texts {
    /// `/proc/self/stat`.
    pub stat: String,
    /// `/proc/self/status`.
    pub status: String,
    /// `/proc/self/limits`.
    pub limits: String,
    /// `/proc/stat` (for the boot time).
    pub system_stat: String,
}

/// What the texts say, each value `None` when its text did not say it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Start time since the Unix epoch, seconds.
    pub start_time_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// The soft limit of open files (`None` also when unlimited).
    pub max_fds: Option<u64>,
}

impl Sample {
    /// Reads `texts`; `ticks` is the kernel's clock ticks per second (`_SC_CLK_TCK`).
    pub fn parse(texts: &Texts, ticks: f64) -> Sample {
        // The command name in parentheses may hold spaces and parentheses: fields count from
        // the last `)`. After it: field 3 (state) is index 0, utime (14) is 11, stime 12,
        // starttime (22) 19.
        let fields: Vec<&str> = texts
            .stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let cpu_seconds = match (number(11), number(12)) {
            (Some(user), Some(system)) if ticks > 0.0 => Some((user + system) as f64 / ticks),
            _ => None,
        };
        let boot = texts
            .system_stat
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok());
        let start_time_seconds = match (boot, number(19)) {
            (Some(boot), Some(start)) if ticks > 0.0 => Some(boot as f64 + start as f64 / ticks),
            _ => None,
        };
        Sample {
            cpu_seconds,
            start_time_seconds,
            resident_bytes: status_kib(&texts.status, "VmRSS:").map(|k| k * 1024),
            virtual_bytes: status_kib(&texts.status, "VmSize:").map(|k| k * 1024),
            max_fds: texts.limits.lines().find_map(|l| {
                l.strip_prefix("Max open files")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            }),
        }
    }
}

/// A `Key:   123 kB` line of /proc/self/status, in KiB.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix(key))?;
    let mut words = value.split_whitespace();
    let number = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(number)
}

/// Encodes the `process_*` metrics of this process at every scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        let texts = Texts {
            stat: read("/proc/self/stat"),
            status: read("/proc/self/status"),
            limits: read("/proc/self/limits"),
            system_stat: read("/proc/stat"),
        };
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let sample = Sample::parse(&texts, ticks);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count().saturating_sub(1) as u64);
        if let Some(v) = sample.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_open_fds",
                "Number of open file descriptors",
                open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                sample.max_fds.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                sample.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                sample.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                sample.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a running process whose name holds a space and a parenthesis.
    const STAT: &str = "28415 (kee ps) erver) S 28413 28413 22000 0 -1 4194304 100 0 0 0 \
        250 50 0 0 20 0 1 0 1060425 3133440 408 18446744073709551615 93871619280896";
    const STATUS: &str = "Name:\tkeepserver\nVmPeak:\t    4000 kB\nVmSize:\t    3892 kB\n\
        VmRSS:\t    1960 kB\nThreads:\t1\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n";
    const SYSTEM_STAT: &str = "cpu  1 2 3 4\nintr 5\nbtime 1796595948\nprocesses 99\n";

    #[test]
    fn reads_what_proc_says() {
        let texts = Texts {
            stat: STAT.into(),
            status: STATUS.into(),
            limits: LIMITS.into(),
            system_stat: SYSTEM_STAT.into(),
        };
        let sample = Sample::parse(&texts, 100.0);
        assert_eq!(sample.cpu_seconds, Some(3.0));
        assert_eq!(sample.start_time_seconds, Some(1796595948.0 + 10604.25));
        assert_eq!(sample.resident_bytes, Some(1960 * 1024));
        assert_eq!(sample.virtual_bytes, Some(3892 * 1024));
        assert_eq!(sample.max_fds, Some(1024));
    }

    #[test]
    fn what_is_missing_stays_unknown() {
        let texts = Texts {
            stat: "1 (x".into(),
            status: "VmRSS:\tlots\n".into(),
            limits: "Max open files            unlimited            unlimited            files\n"
                .into(),
            system_stat: String::new(),
        };
        assert_eq!(Sample::parse(&texts, 100.0), Sample::default());
        assert_eq!(Sample::parse(&Texts::default(), 0.0), Sample::default());
    }

    #[test]
    fn the_collector_reads_this_process() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).expect("encode");
        for name in [
            "process_cpu_seconds_total ",
            "process_open_fds ",
            "process_max_fds ",
            "process_virtual_memory_bytes ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }
}
