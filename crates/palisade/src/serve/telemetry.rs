//! What the server exposes about itself: counters and gauges published by the threads
//! that own them (workers, detection, evidence) and read by the admin listener —
//! `/metrics` in the Prometheus/OpenMetrics text format and `/api/overview` as JSON.
//!
//! Nothing here is on the per-packet path: a worker copies its core's plain counters
//! into its own [`ShardCounters`] (relaxed stores, each shard its own cache lines) at
//! most every [`PUBLISH_EVERY`]; the other threads publish as they work. Label sets are
//! bounded (methods, status classes, shield reasons, finding kinds, queue names: never a
//! user or an address).
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_core::METHOD_LABELS;
use palisade_detect::FindingKind;
use palisade_shield::EventKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// How often a worker copies its counters out.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(250);

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
/// The queues whose losses are exposed (`palisade_dropped_total{queue}`).
pub(crate) const QUEUES: [&str; 5] = ["shard", "store", "detect", "evidence", "hep"];

/// One worker's counters (its core's, copied out).
#[derive(Default)]
pub(crate) struct ShardCounters {
    pub(crate) requests: [AtomicU64; METHOD_LABELS.len()],
    pub(crate) responses: [AtomicU64; 6],
    pub(crate) shield: [AtomicU64; EventKind::LABELS.len()],
    pub(crate) transactions: AtomicU64,
    /// Items this worker shed, by queue (index in [`QUEUES`]).
    pub(crate) dropped: [AtomicU64; QUEUES.len()],
    /// Depth of this worker's own hand-over queue.
    pub(crate) queued: AtomicU64,
    /// Messages this worker holds back for the storage thread.
    pub(crate) store_held: AtomicU64,
}

/// A call in progress, as the admin API lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct CallView {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    pub(crate) callee: String,
    pub(crate) state: &'static str,
    pub(crate) since: i64,
    pub(crate) source: String,
    pub(crate) user_agent: String,
}

/// Everything the admin listener reads.
pub(crate) struct Telemetry {
    pub(crate) started: Instant,
    pub(crate) domain: String,
    pub(crate) shards: Vec<ShardCounters>,
    /// Contacts bound (published by shard 0, which holds every binding).
    pub(crate) registrations: AtomicU64,
    /// Workers whose socket receives the datagrams from the network: 1 while they are
    /// gathered on worker 0 (light load, see `balance`), else every worker.
    pub(crate) udp_receiving: AtomicU64,
    /// Findings raised since start, by kind ([`FindingKind::ALL`] order).
    pub(crate) findings: [AtomicU64; FindingKind::ALL.len()],
    /// The calls in progress, as the detection thread last listed them for `/api/calls`.
    pub(crate) calls: Mutex<Vec<CallView>>,
    /// Set by `/api/calls`: the detection thread lists the calls at its next pass.
    pub(crate) calls_wanted: AtomicBool,
    /// The detection thread runs (it alone knows the calls in progress).
    pub(crate) detecting: AtomicBool,
    /// Lists made so far (the API waits for the next one).
    pub(crate) calls_published: AtomicU64,
    pub(crate) calls_active: AtomicU64,
    pub(crate) blocks_active: AtomicU64,
    pub(crate) evidence_enabled: bool,
    pub(crate) evidence_entries: AtomicU64,
    /// Unix ms of the last signed checkpoint (0: none yet).
    pub(crate) checkpoint_ms: AtomicI64,
    /// Items shed by the threads other than the workers, by queue.
    pub(crate) dropped: [AtomicU64; QUEUES.len()],
    /// The media relay's counters.
    pub(crate) media: Arc<super::media::types::MediaStats>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("domain", &self.domain)
            .finish()
    }
}

fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0u64, u64::saturating_add)
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Telemetry {
    pub(crate) fn new(domain: &str, workers: usize, evidence_enabled: bool) -> Self {
        Telemetry {
            started: Instant::now(),
            domain: domain.to_string(),
            shards: (0..workers).map(|_| ShardCounters::default()).collect(),
            registrations: AtomicU64::new(0),
            udp_receiving: AtomicU64::new(workers as u64),
            findings: Default::default(),
            calls: Mutex::new(Vec::new()),
            calls_wanted: AtomicBool::new(false),
            detecting: AtomicBool::new(false),
            calls_published: AtomicU64::new(0),
            calls_active: AtomicU64::new(0),
            blocks_active: AtomicU64::new(0),
            evidence_enabled,
            evidence_entries: AtomicU64::new(0),
            checkpoint_ms: AtomicI64::new(0),
            dropped: Default::default(),
            media: Arc::new(super::media::types::MediaStats::new()),
        }
    }

    /// The index of a queue name in [`QUEUES`].
    pub(crate) fn queue(name: &str) -> usize {
        QUEUES.iter().position(|q| *q == name).unwrap_or(0)
    }

    /// One counter array of every shard, summed slot by slot and named by `labels`.
    fn summed<const N: usize>(
        &self,
        labels: &[&'static str],
        of: impl Fn(&ShardCounters) -> &[AtomicU64; N],
    ) -> Vec<(&'static str, u64)> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let n = sum(self.shards.iter().filter_map(|s| of(s).get(i)).map(get));
                (*l, n)
            })
            .collect()
    }

    /// Requests by method label, summed over the shards.
    pub(crate) fn requests(&self) -> Vec<(&'static str, u64)> {
        self.summed(&METHOD_LABELS, |s| &s.requests)
    }

    /// Responses sent by status class, summed over the shards.
    pub(crate) fn responses(&self) -> Vec<(&'static str, u64)> {
        self.summed(&CLASSES, |s| &s.responses)
    }

    /// Shield decisions by kind, summed over the shards.
    pub(crate) fn shield(&self) -> Vec<(&'static str, u64)> {
        self.summed(&EventKind::LABELS, |s| &s.shield)
    }

    pub(crate) fn findings(&self) -> Vec<(&'static str, u64)> {
        FindingKind::ALL
            .iter()
            .zip(self.findings.iter())
            .map(|(k, n)| (k.as_str(), get(n)))
            .collect()
    }

    pub(crate) fn transactions(&self) -> u64 {
        sum(self.shards.iter().map(|s| get(&s.transactions)))
    }

    /// Items shed since start, by queue (the workers' and the other threads').
    pub(crate) fn dropped(&self) -> Vec<(&'static str, u64)> {
        QUEUES
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut own = self.dropped.get(i).map_or(0, get);
                if *q == "detect" {
                    // (the media relay's observations of cut streams)
                    own = own.saturating_add(get(&self.media.detect_dropped));
                }
                let shards = sum(self.shards.iter().filter_map(|s| s.dropped.get(i)).map(get));
                (*q, own.saturating_add(shards))
            })
            .collect()
    }

    /// Queue depths now, for the queues whose depth is known: the workers' hand-over
    /// queues (`shard`, counted as they are filled and emptied) and what the workers
    /// hold back for the storage thread (`store`). The other queues are std channels
    /// without a length; their losses are in [`Telemetry::dropped`].
    pub(crate) fn depths(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("shard", sum(self.shards.iter().map(|s| get(&s.queued)))),
            ("store", sum(self.shards.iter().map(|s| get(&s.store_held)))),
        ]
    }

    /// Seconds since the last signed checkpoint, if there is one.
    pub(crate) fn checkpoint_age_s(&self, now_ms: i64) -> Option<f64> {
        let at = self.checkpoint_ms.load(Ordering::Relaxed);
        (at > 0).then(|| (now_ms.saturating_sub(at)).max(0) as f64 / 1000.0)
    }

    /// A registry with this server's metrics and the process's.
    pub(crate) fn registry(self: &Arc<Self>) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(ServerCollector(self.clone())));
        r.register_collector(Box::new(ProcessCollector));
        r
    }
}

#[derive(Debug)]
struct ServerCollector(Arc<Telemetry>);

fn counter_family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (v, n) in values {
        ConstCounter::new(*n).encode(family.encode_family(&[(label, *v)])?)?;
    }
    Ok(())
}

fn gauge_family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (v, n) in values {
        let n = i64::try_from(*n).unwrap_or(i64::MAX);
        ConstGauge::new(n).encode(family.encode_family(&[(label, *v)])?)?;
    }
    Ok(())
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter<N: prometheus_client::encoding::EncodeCounterValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let t = &self.0;
        let m = &t.media;
        counter_family(
            &mut enc,
            "palisade_media_packets",
            "Media relay datagrams: forwarded, held (before the answer, or toward a party not known yet), refused",
            "result",
            &[
                ("forwarded", get(&m.forwarded)),
                ("held", get(&m.held)),
                ("refused", sum(m.refused.iter().map(get))),
            ],
        )?;
        let refused: Vec<(&str, u64)> = palisade_media::Reason::ALL
            .iter()
            .zip(m.refused.iter())
            .map(|(r, n)| (r.as_str(), get(n)))
            .collect();
        counter_family(
            &mut enc,
            "palisade_media_refused",
            "Media relay datagrams refused, by reason",
            "reason",
            &refused,
        )?;
        gauge(
            &mut enc,
            "palisade_media_calls",
            "Calls whose media the relay anchors now",
            clamp(get(&m.calls)),
        )?;
        counter(
            &mut enc,
            "palisade_media_streams_cut",
            "Media streams cut for malformed packets",
            get(&m.cut),
        )?;
        // Counter names are written without `_total`: the encoder adds it.
        counter_family(
            &mut enc,
            "palisade_sip_requests",
            "SIP requests received, by method",
            "method",
            &t.requests(),
        )?;
        counter_family(
            &mut enc,
            "palisade_sip_responses",
            "SIP responses sent (made here or relayed), by status class",
            "code_class",
            &t.responses(),
        )?;
        counter_family(
            &mut enc,
            "palisade_shield_refusals",
            "Shield decisions recorded (refusals and removals), by reason",
            "reason",
            &t.shield(),
        )?;
        counter_family(
            &mut enc,
            "palisade_findings",
            "Findings raised by the campaign detectors, by kind",
            "kind",
            &t.findings(),
        )?;
        counter_family(
            &mut enc,
            "palisade_dropped",
            "Items shed by a full bounded queue, by queue",
            "queue",
            &t.dropped(),
        )?;
        gauge_family(
            &mut enc,
            "palisade_queue_depth",
            "Items waiting in a bounded queue, by queue",
            "queue",
            &t.depths(),
        )?;
        gauge(
            &mut enc,
            "palisade_registrations",
            "Contacts bound in the registrar",
            clamp(get(&t.registrations)),
        )?;
        gauge(
            &mut enc,
            "palisade_udp_receiving_workers",
            "Workers whose socket receives the UDP datagrams from the network (1 while a light load is gathered on one)",
            clamp(get(&t.udp_receiving)),
        )?;
        gauge(
            &mut enc,
            "palisade_calls_active",
            "Observed calls without a final response, and answered calls not yet ended",
            clamp(get(&t.calls_active)),
        )?;
        gauge(
            &mut enc,
            "palisade_transactions",
            "Live SIP transactions (server and client)",
            clamp(t.transactions()),
        )?;
        gauge(
            &mut enc,
            "palisade_blocks_active",
            "Restrictions in force (the operator's and the detectors')",
            clamp(get(&t.blocks_active)),
        )?;
        gauge(
            &mut enc,
            "palisade_workers",
            "Worker threads",
            clamp(t.shards.len() as u64),
        )?;
        counter(
            &mut enc,
            "palisade_evidence_entries",
            "Entries in the signed evidence log",
            get(&t.evidence_entries),
        )?;
        if let Some(age) = t.checkpoint_age_s(crate::clock::now_ms()) {
            gauge(
                &mut enc,
                "palisade_evidence_checkpoint_age_seconds",
                "Seconds since the evidence log's last signed checkpoint",
                age,
            )?;
        }
        Ok(())
    }
}

/// The standard `process_*` metrics, read from `/proc/self` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self` says about this process.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProcessStats {
    pub(crate) cpu_seconds: f64,
    pub(crate) start_time_seconds: f64,
    pub(crate) resident_bytes: u64,
    pub(crate) virtual_bytes: u64,
    pub(crate) threads: u64,
    pub(crate) open_fds: u64,
    pub(crate) max_fds: u64,
}

/// Parses `/proc/self/stat` (fields after the command name, which may hold spaces and
/// parentheses: everything up to the last `)` is skipped), with the clock tick rate,
/// the page size and the boot time (`btime` of `/proc/stat`).
pub(crate) fn parse_stat(stat: &str, ticks: f64, page: u64, boot: f64) -> Option<ProcessStats> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // fields from 3 (state) on: rest[0] is field 3
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    let utime = num(14)?;
    let stime = num(15)?;
    let threads = num(20)?;
    let start = num(22)?;
    let vsize = num(23)?;
    let rss = num(24)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks,
        start_time_seconds: boot + start as f64 / ticks,
        resident_bytes: rss.saturating_mul(page),
        virtual_bytes: vsize,
        threads,
        ..Default::default()
    })
}

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    let (ticks, page) = super::sys::clock_ticks_and_page_size();
    let mut s = parse_stat(&stat, ticks, page, boot)?;
    s.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    s.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    Some(s)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(s) = process_stats() else {
            return Ok(());
        };
        counter(
            &mut enc,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            s.cpu_seconds,
        )?;
        gauge(
            &mut enc,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            s.start_time_seconds,
        )?;
        gauge(
            &mut enc,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            clamp(s.resident_bytes),
        )?;
        gauge(
            &mut enc,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            clamp(s.virtual_bytes),
        )?;
        gauge(
            &mut enc,
            "process_threads",
            "Number of OS threads in the process",
            clamp(s.threads),
        )?;
        gauge(
            &mut enc,
            "process_open_fds",
            "Number of open file descriptors",
            clamp(s.open_fds),
        )?;
        gauge(
            &mut enc,
            "process_max_fds",
            "Maximum number of open file descriptors",
            clamp(s.max_fds),
        )?;
        Ok(())
    }
}

/// The OpenMetrics text exposition of `registry`.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// The same exposition in the Prometheus text format (0.0.4), which every scraper and
/// `promtool check metrics` read: a counter's family is named with its `_total` suffix
/// (OpenMetrics names the family without it), and there is no `# EOF` or `# UNIT`.
pub(crate) fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        // a command name with a space and a parenthesis, as the kernel writes it
        let stat = "4242 (palisade (w) 1) S 1 4242 4242 0 -1 4194560 1503 0 0 0 250 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(stat, 100.0, 4096, 1_700_000_000.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 123.45);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        assert_eq!(parse_stat("garbage", 100.0, 4096, 0.0), None);
    }

    #[test]
    fn the_exposition_sums_the_shards_and_names_bounded_labels() {
        let t = Arc::new(Telemetry::new("example.com", 2, true));
        let reg = METHOD_LABELS.iter().position(|m| *m == "REGISTER").unwrap();
        t.shards[0].requests[reg].store(3, Ordering::Relaxed);
        t.shards[1].requests[reg].store(4, Ordering::Relaxed);
        t.shards[1].responses[3].store(2, Ordering::Relaxed);
        t.shards[0].shield[0].store(5, Ordering::Relaxed);
        t.registrations.store(9, Ordering::Relaxed);
        t.dropped[Telemetry::queue("detect")].store(1, Ordering::Relaxed);
        t.shards[0].dropped[Telemetry::queue("shard")].store(2, Ordering::Relaxed);
        let text = render(&t.registry());
        for line in [
            "palisade_sip_requests_total{method=\"REGISTER\"} 7",
            "palisade_sip_responses_total{code_class=\"4xx\"} 2",
            "palisade_shield_refusals_total{reason=\"offer-refused\"} 5",
            "palisade_registrations 9",
            "palisade_dropped_total{queue=\"detect\"} 1",
            "palisade_dropped_total{queue=\"shard\"} 2",
            "palisade_workers 2",
            "palisade_udp_receiving_workers 2",
            "# TYPE palisade_sip_requests counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let classic = prometheus_text(&text);
        assert!(classic.contains("# TYPE palisade_sip_requests_total counter\n"));
        assert!(classic.contains("# HELP palisade_sip_requests_total SIP requests"));
        assert!(classic.contains("# TYPE palisade_registrations gauge\n"));
        assert!(!classic.contains("# EOF"));
        assert!(classic.contains("palisade_sip_requests_total{method=\"REGISTER\"} 7\n"));
    }
}
