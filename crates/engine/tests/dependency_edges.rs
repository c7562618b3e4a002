//! The architecture's dependency rule, checked: cli → server → api → jobs → {engine, catalog,
//! power, schedule}, engine → {storage, sources}, and nothing points back; the api reaches storage,
//! sources, the engine and power drivers only through jobs. (ARCHITECTURE.md, "Code map".)

use std::path::Path;

fn drydock_dependencies(crate_dir: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies && line.starts_with("drydock-") {
            found.push(line.split(['.', ' ', '=']).next().unwrap().to_string());
        }
    }
    found.sort();
    found
}

#[test]
fn dependencies_point_one_way() {
    assert!(drydock_dependencies("storage").is_empty(), "storage must not depend on other drydock crates");
    assert!(drydock_dependencies("sources").is_empty(), "sources must not depend on other drydock crates");
    assert_eq!(drydock_dependencies("engine"), ["drydock-sources", "drydock-storage"]);
    assert!(drydock_dependencies("power").is_empty(), "power drivers must not depend on other drydock crates");
    assert!(drydock_dependencies("catalog").is_empty(), "the catalog must not depend on other drydock crates");
    assert!(drydock_dependencies("schedule").is_empty(), "schedule is pure: it depends on no drydock crate");
    assert_eq!(
        drydock_dependencies("jobs"),
        [
            "drydock-catalog",
            "drydock-engine",
            "drydock-power",
            "drydock-schedule",
            "drydock-sources",
            "drydock-storage"
        ]
    );
    assert_eq!(drydock_dependencies("api"), ["drydock-catalog", "drydock-jobs", "drydock-schedule"]);
    assert_eq!(drydock_dependencies("server"), ["drydock-api", "drydock-catalog", "drydock-jobs", "drydock-schedule"]);
}

/// HTTP is served by the api and server crates only; it is spoken as a client only by them, the
/// cli, and storage (its S3 backend, the one place object stores are reached from).
#[test]
fn only_the_api_server_cli_and_s3_storage_speak_http() {
    for crate_dir in ["storage", "sources", "engine", "power", "catalog", "schedule", "jobs"] {
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("Cargo.toml"),
        )
        .unwrap();
        let client_allowed = crate_dir == "storage";
        for forbidden in ["axum", "hyper", "ureq", "rustls"] {
            if client_allowed && forbidden == "ureq" {
                continue;
            }
            assert!(!manifest.contains(&format!("\n{forbidden}")), "{crate_dir} depends on {forbidden}");
        }
    }
}

#[test]
fn the_engine_does_not_speak_http_sql_or_terminals() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    for forbidden in ["axum", "hyper", "reqwest", "sqlx", "rusqlite", "clap", "indicatif", "anyhow"] {
        assert!(!manifest.contains(&format!("\n{forbidden}")), "engine depends on {forbidden}");
    }
}
