//! `drydock serve`, `drydock token …` and `drydock catalog …`: the daemon and the commands that
//! work on its data directory directly.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use drydock_server::{Config, ConfigOverrides};

use crate::EXIT_DAMAGE_FOUND;
use crate::args::{CatalogCommand, Cli, DaemonArgs, ServeArgs, TokenCommand};

fn load(daemon: &DaemonArgs, serve: Option<&ServeArgs>) -> Result<Config> {
    let overrides = ConfigOverrides {
        config_file: daemon.config.clone(),
        data_dir: daemon.data_dir.clone(),
        database_url: daemon.database_url.clone(),
        listen: serve.and_then(|s| s.listen.clone()),
        plain_http: serve.is_some_and(|s| s.plain_http),
    };
    Ok(Config::load(&overrides)?)
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let config = load(&args.daemon, Some(args))?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DRYDOCK_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let first_start = drydock_server::open_catalog(&config)?.token_count()? == 0;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(drydock_server::run(config, |config, address| {
        let scheme = if config.plain_http { "http" } else { "https" };
        let url = format!("{scheme}://{address}");
        eprintln!("drydock: serving the API on {url} (data in {})", config.data_dir.display());
        if !config.plain_http {
            eprintln!("drydock: clients trust the certificate {}", config.cert_path().display());
        }
        eprintln!("drydock: the web dashboard is at {url}/ (sign in with an API token)");
        if first_start {
            eprintln!("{}", getting_started(config, &url));
        }
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Printed on the first start: how to get a token and take a first snapshot.
fn getting_started(config: &Config, url: &str) -> String {
    let exe = std::env::current_exe().map_or_else(|_| "drydock".to_string(), |p| p.display().to_string());
    let data = config.data_dir.display();
    let disk = config.data_dir.join("disks").join("web-1.img");
    let disk = disk.display();
    let cacert = config.cert_path();
    let cacert = cacert.display();
    format!(
        "drydock: no API token exists yet. In another terminal:

  # 1. a token with full access (the secret is printed once)
  export DRYDOCK_TOKEN=$({exe} token create --data-dir {data} --scopes '*')
  # 2. register a machine: any raw or qcow2 disk under {data}/disks (or a configured disk_root)
  truncate -s 1G {disk}
  curl --cacert {cacert} -H \"Authorization: Bearer $DRYDOCK_TOKEN\" \\
       -d '{{\"name\": \"web-1\", \"disk\": {{\"path\": \"{disk}\"}}}}' {url}/v2/droplets
  # 3. take a snapshot and poll its action until \"completed\"
  curl --cacert {cacert} -H \"Authorization: Bearer $DRYDOCK_TOKEN\" \\
       -d '{{\"type\": \"snapshot\", \"name\": \"first\"}}' {url}/v2/droplets/1/actions
  curl --cacert {cacert} -H \"Authorization: Bearer $DRYDOCK_TOKEN\" {url}/v2/actions

pydo: pydo.Client(token, endpoint=\"{url}\", connection_verify=\"{cacert}\")
browser: {url}/, signed in with the token of step 1"
    )
}

pub fn token(cli: &Cli, command: &TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create(args) => {
            for scope in &args.scopes {
                drydock_api::validate_scope(scope).map_err(anyhow::Error::msg)?;
            }
            let config = load(&args.team.daemon, None)?;
            let catalog = drydock_server::open_catalog(&config)?;
            let team = catalog.ensure_team(&args.team.team)?;
            let created = catalog.create_token(team.id, &args.name, &args.scopes)?;
            if cli.json {
                let json = serde_json::json!({"id": created.token.id, "name": created.token.name, "team": team.name,
                    "scopes": created.token.scopes, "secret": created.secret});
                outln!("{json}");
            } else {
                // The secret alone on stdout, so `TOKEN=$(drydock token create …)` works.
                outln!("{}", created.secret);
                eprintln!(
                    "drydock: token {} ({}) for team {} with scopes {}: keep the secret, it is not shown again",
                    created.token.id,
                    created.token.name,
                    team.name,
                    created.token.scopes.join(",")
                );
            }
        }
        TokenCommand::List(args) => {
            let config = load(&args.daemon, None)?;
            let catalog = drydock_server::open_catalog(&config)?;
            let team = catalog.ensure_team(&args.team)?;
            let tokens = catalog.tokens(team.id)?;
            if cli.json {
                let items: Vec<_> = tokens
                    .iter()
                    .map(|t| serde_json::json!({"id": t.id, "name": t.name, "scopes": t.scopes, "created_at": t.created_at}))
                    .collect();
                outln!("{}", serde_json::Value::from(items));
            } else {
                outln!("{:<6} {:<20} {:<22} SCOPES", "ID", "NAME", "CREATED");
                for t in &tokens {
                    outln!("{:<6} {:<20} {:<22} {}", t.id, t.name, t.created_at, t.scopes.join(","));
                }
            }
        }
        TokenCommand::Revoke { id, team } => {
            let config = load(&team.daemon, None)?;
            let catalog = drydock_server::open_catalog(&config)?;
            let team = catalog.ensure_team(&team.team)?;
            catalog.revoke_token(team.id, *id)?;
            if cli.json {
                outln!("{}", serde_json::json!({"revoked": id}));
            } else {
                eprintln!("drydock: token {id} revoked");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn catalog(cli: &Cli, command: &CatalogCommand) -> Result<ExitCode> {
    let (daemon, rebuild) = match command {
        CatalogCommand::Check(daemon) => (daemon, false),
        CatalogCommand::Rebuild(daemon) => (daemon, true),
    };
    let config = load(daemon, None)?;
    if config.database_url.is_none() && !config.catalog_path().exists() {
        bail!("{} holds no catalog: is this the daemon's data directory?", config.data_dir.display());
    }
    let catalog = drydock_server::open_catalog(&config)?;
    let regions = drydock_server::open_regions(&config)?;
    let check = if rebuild {
        drydock_jobs::rebuild_catalog(&catalog, &regions)?
    } else {
        drydock_jobs::check_catalog(&catalog, &regions)?
    };
    if cli.json {
        let json = serde_json::json!({
            "images_checked": check.images_checked,
            "snapshots_checked": check.snapshots_checked,
            "consistent": check.mismatches.is_empty(),
            "mismatches": check.mismatches.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "rebuilt": rebuild,
        });
        outln!("{json}");
    } else {
        for mismatch in &check.mismatches {
            outln!("{}{mismatch}", if rebuild { "fixed: " } else { "" });
        }
        outln!(
            "{} images in the catalog, {} snapshots in the repositories: {}",
            check.images_checked,
            check.snapshots_checked,
            match (check.mismatches.len(), rebuild) {
                (0, _) => "consistent".to_string(),
                (n, false) => format!("{n} mismatches (drydock catalog rebuild fixes them)"),
                (n, true) => format!("{n} mismatches fixed"),
            }
        );
    }
    Ok(if check.mismatches.is_empty() || rebuild { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DAMAGE_FOUND) })
}
