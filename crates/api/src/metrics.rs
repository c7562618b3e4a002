//! `GET /metrics`: backup health in the Prometheus text exposition format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>). [`render`] is pure: the route
//! reads the catalog into a [`MetricsInput`] and serves the text with [`CONTENT_TYPE`].
//!
//! Every family is written with its `# HELP` and `# TYPE` lines even when it has no sample, so
//! dashboards and alert rules find every name on every daemon. Per-resource samples carry the
//! labels `resource_type`, `resource_id` and `name`; a value that is not known yet (no successful
//! backup so far) has no sample rather than a made-up zero, so `time() -
//! drydock_backup_last_success_timestamp_seconds` never claims a backup from 1970.

use std::fmt::{self, Write};

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics are computed from: plain data, filled in from the catalog by the route.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsInput {
    /// The daemon's version, for `drydock_build_info`.
    pub version: String,
    /// Actions in progress now, of every type.
    pub actions_running: u64,
    /// Droplets and volumes, in the order their samples are written; one entry per resource.
    pub resources: Vec<ResourceMetrics>,
}

/// One droplet or volume. Counts cover every scheduled run the catalog remembers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceMetrics {
    /// `droplet` or `volume`.
    pub resource_type: String,
    pub resource_id: String,
    pub name: String,
    /// When the last successful backup was taken, unix seconds.
    pub last_success_at: Option<i64>,
    /// How long the last successful backup took.
    pub last_duration_secs: Option<f64>,
    /// The logical size of the last successful backup.
    pub last_size_bytes: Option<u64>,
    pub successes: u64,
    /// Failed attempts (a window retried three times counts three).
    pub failures: u64,
    /// Windows that closed without a backup.
    pub missed: u64,
    /// The last success is older than the plan allows.
    pub stale: bool,
    pub backups_enabled: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// A sample's value, written exactly: integers as integers, floats the way Prometheus reads them.
enum Value {
    Integer(i64),
    Count(u64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Integer(v) => write!(f, "{v}"),
            Value::Count(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

fn flag(on: bool) -> Option<Value> {
    Some(Value::Count(u64::from(on)))
}

/// A family with one sample per resource (none where `value` says nothing is known).
struct ResourceFamily {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&ResourceMetrics) -> Option<Value>,
}

const RESOURCE_FAMILIES: [ResourceFamily; 8] = [
    ResourceFamily {
        name: "drydock_backup_last_success_timestamp_seconds",
        kind: Kind::Gauge,
        help: "When the last successful backup of the resource was taken, in unix seconds.",
        value: |r| r.last_success_at.map(Value::Integer),
    },
    ResourceFamily {
        name: "drydock_backup_last_duration_seconds",
        kind: Kind::Gauge,
        help: "How long the last successful backup of the resource took.",
        value: |r| r.last_duration_secs.map(Value::Float),
    },
    ResourceFamily {
        name: "drydock_backup_last_size_bytes",
        kind: Kind::Gauge,
        help: "Logical size of the last successful backup of the resource.",
        value: |r| r.last_size_bytes.map(Value::Count),
    },
    ResourceFamily {
        name: "drydock_backup_successes_total",
        kind: Kind::Counter,
        help: "Scheduled backups of the resource that succeeded.",
        value: |r| Some(Value::Count(r.successes)),
    },
    ResourceFamily {
        name: "drydock_backup_failures_total",
        kind: Kind::Counter,
        help: "Failed attempts at scheduled backups of the resource (a retried window counts each attempt).",
        value: |r| Some(Value::Count(r.failures)),
    },
    ResourceFamily {
        name: "drydock_backup_missed_total",
        kind: Kind::Counter,
        help: "Backup windows of the resource that closed without a backup.",
        value: |r| Some(Value::Count(r.missed)),
    },
    ResourceFamily {
        name: "drydock_backup_stale",
        kind: Kind::Gauge,
        help: "1 when the last successful backup of the resource is older than its plan allows.",
        value: |r| flag(r.stale),
    },
    ResourceFamily {
        name: "drydock_backup_enabled",
        kind: Kind::Gauge,
        help: "1 when scheduled backups are on for the resource.",
        value: |r| flag(r.backups_enabled),
    },
];

/// The whole exposition, families in a fixed order.
pub fn render(input: &MetricsInput) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, hence the ignored results below.
    for family in &RESOURCE_FAMILIES {
        write_header(&mut out, family.name, family.kind, family.help);
        for resource in &input.resources {
            if let Some(value) = (family.value)(resource) {
                let _ = writeln!(
                    out,
                    "{}{{resource_type=\"{}\",resource_id=\"{}\",name=\"{}\"}} {value}",
                    family.name,
                    LabelValue(&resource.resource_type),
                    LabelValue(&resource.resource_id),
                    LabelValue(&resource.name),
                );
            }
        }
    }
    write_header(&mut out, "drydock_actions_running", Kind::Gauge, "Actions in progress now, of every type.");
    let _ = writeln!(out, "drydock_actions_running {}", input.actions_running);
    write_header(&mut out, "drydock_build_info", Kind::Gauge, "The running drydock's version; the value is always 1.");
    let _ = writeln!(out, "drydock_build_info{{version=\"{}\"}} 1", LabelValue(&input.version));
    out
}

fn write_header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let kind = match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the format wants it between double quotes: `\`, `"` and newlines escaped.
struct LabelValue<'a>(&'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn droplet() -> ResourceMetrics {
        ResourceMetrics {
            resource_type: "droplet".into(),
            resource_id: "12".into(),
            name: "web-1".into(),
            last_success_at: Some(1_772_339_467),
            last_duration_secs: Some(12.5),
            last_size_bytes: Some(10 << 30),
            successes: 40,
            failures: 2,
            missed: 1,
            stale: false,
            backups_enabled: true,
        }
    }

    /// A volume that has never had a successful backup.
    fn new_volume() -> ResourceMetrics {
        ResourceMetrics {
            resource_type: "volume".into(),
            resource_id: "5f1c0b7e-4c1d-4a4e-9d3b-1f2e3d4c5b6a".into(),
            name: "db".into(),
            stale: true,
            backups_enabled: true,
            ..ResourceMetrics::default()
        }
    }

    fn input() -> MetricsInput {
        MetricsInput { version: "0.1.0".into(), actions_running: 3, resources: vec![droplet(), new_volume()] }
    }

    #[test]
    fn samples_for_a_droplet_with_history_and_a_volume_without() {
        let text = render(&input());
        let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        let droplet = "{resource_type=\"droplet\",resource_id=\"12\",name=\"web-1\"}";
        let volume = "{resource_type=\"volume\",resource_id=\"5f1c0b7e-4c1d-4a4e-9d3b-1f2e3d4c5b6a\",name=\"db\"}";
        let expected = [
            format!("drydock_backup_last_success_timestamp_seconds{droplet} 1772339467"),
            format!("drydock_backup_last_duration_seconds{droplet} 12.5"),
            format!("drydock_backup_last_size_bytes{droplet} 10737418240"),
            format!("drydock_backup_successes_total{droplet} 40"),
            format!("drydock_backup_successes_total{volume} 0"),
            format!("drydock_backup_failures_total{droplet} 2"),
            format!("drydock_backup_failures_total{volume} 0"),
            format!("drydock_backup_missed_total{droplet} 1"),
            format!("drydock_backup_missed_total{volume} 0"),
            format!("drydock_backup_stale{droplet} 0"),
            format!("drydock_backup_stale{volume} 1"),
            format!("drydock_backup_enabled{droplet} 1"),
            format!("drydock_backup_enabled{volume} 1"),
            "drydock_actions_running 3".to_string(),
            "drydock_build_info{version=\"0.1.0\"} 1".to_string(),
        ];
        assert_eq!(samples, expected);
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let tricky = ResourceMetrics { name: "a\\b \"c\"\nd é".into(), ..droplet() };
        let text = render(&MetricsInput { resources: vec![tricky], ..input() });
        assert!(text.contains(r#"name="a\\b \"c\"\nd é"}"#), "{text}");
        // The newline in the name did not split a sample over two lines.
        assert!(text.lines().all(|line| line.starts_with("# ") || line.starts_with("drydock_")), "{text}");
    }

    #[test]
    fn every_sample_follows_its_help_and_type_and_counters_end_in_total() {
        let text = render(&input());
        let mut declared: HashMap<String, (bool, Option<String>)> = HashMap::new();
        let mut current: Option<String> = None;
        let mut finished: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty() && !help.contains('\\'), "{line}");
                assert!(declared.insert(name.to_string(), (true, None)).is_none(), "{name} declared twice");
                finished.extend(current.take());
                current = Some(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(Some(name), current.as_deref(), "TYPE right after its HELP");
                assert!(kind == "gauge" || kind == "counter", "{line}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                declared.get_mut(name).unwrap().1 = Some(kind.to_string());
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(name), current.as_deref(), "{line} is not under its own family");
                assert!(declared[name].1.is_some(), "{name} has no TYPE");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        finished.extend(current);
        assert_eq!(finished.len(), 10, "{finished:?}");
        assert!(finished.iter().all(|name| name.starts_with("drydock_")));
    }

    #[test]
    fn families_are_declared_even_without_resources() {
        let text = render(&MetricsInput { version: "0.1.0".into(), ..MetricsInput::default() });
        assert_eq!(text.lines().filter(|line| line.starts_with("# TYPE ")).count(), 10);
        assert!(text.contains("\ndrydock_actions_running 0\n"));
    }

    #[test]
    fn floats_are_written_the_way_prometheus_reads_them() {
        assert_eq!(Value::Float(0.25).to_string(), "0.25");
        assert_eq!(Value::Float(3.0).to_string(), "3");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Count(u64::MAX).to_string(), "18446744073709551615");
    }
}
