//! The `switchboard` command line: `serve`, `check-config`, `migrate`, `user …`, `domain …`,
//! `reload`.

/// `println!` for command output. A reader that went away (`switchboard device list | head`)
/// ends the command quietly with the status a shell gives a process killed by SIGPIPE, as
/// other Unix tools do, instead of panicking. (The binary keeps Rust's SIGPIPE-ignored default
/// because the server must see a closed socket as an error value, not a signal.)
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
            panic!("writing to standard output: {e}");
        }
    }};
}

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rand::distributions::{Alphanumeric, DistString};
use switchboard_storage::{AuditEntry, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{load, ConfigSource, Listener, Settings};
use crate::plugins::manifest::{load_manifest_ref, Artifact, World, HOST_SDK_VERSION};
use crate::plugins::scaffold::{scaffold, SdkDependency};
use crate::server;

/// Switchboard: ActiveSync, Outlook and SIP for the mail, calendars and people you already have.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file. Default: ./switchboard.toml if it exists, else built-in defaults.
    /// Any key can be overridden with SWITCHBOARD__SECTION__KEY environment variables.
    #[arg(
        short,
        long,
        global = true,
        env = "SWITCHBOARD_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database, creates a demo user on first start).
    Serve,
    /// Validate a configuration and print every problem with its key path.
    CheckConfig {
        /// File to check (default: the --config file).
        file: Option<PathBuf>,
    },
    /// Apply database migrations (the server also does this at start).
    Migrate {
        /// Only list migrations not yet applied.
        #[arg(long)]
        status: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Ask the running server to reload its configuration (through the admin API).
    Reload,
    /// Inspect and verify plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Work with mailboxes.
    #[command(subcommand)]
    Mail(MailCommand),
    /// ActiveSync devices (phones): list, show, remote wipe, resync, remove.
    #[command(subcommand)]
    Device(DeviceCommand),
}

/// `switchboard device …` (see [`crate::device_admin`]). The server may keep running.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices: user, device id, type, protocol version, provisioned, wipe state.
    List {
        /// Only this user's devices.
        #[arg(long)]
        user: Option<String>,
        /// The ActiveSync plugin's [plugins.<name>] entry.
        #[arg(long, default_value = "eas")]
        plugin: String,
    },
    /// Everything known about one device (DeviceInformation, sync state).
    Show {
        /// The owner, e.g. alice@example.com.
        user: String,
        /// The device id.
        device: String,
        /// The ActiveSync plugin's [plugins.<name>] entry.
        #[arg(long, default_value = "eas")]
        plugin: String,
    },
    /// Remote-wipe a device at its next request (provisioning carries the directive).
    Wipe {
        /// The owner, e.g. alice@example.com.
        user: String,
        /// The device id.
        device: String,
        /// Remove only this account's data from the device (protocol 16.1 phones).
        #[arg(long)]
        account_only: bool,
        /// The ActiveSync plugin's [plugins.<name>] entry.
        #[arg(long, default_value = "eas")]
        plugin: String,
    },
    /// Drop the device's sync state: it re-syncs folders and items from scratch.
    Resync {
        /// The owner, e.g. alice@example.com.
        user: String,
        /// The device id.
        device: String,
        /// The ActiveSync plugin's [plugins.<name>] entry.
        #[arg(long, default_value = "eas")]
        plugin: String,
    },
    /// Forget the device and all its state (a pending wipe too).
    Remove {
        /// The owner, e.g. alice@example.com.
        user: String,
        /// The device id.
        device: String,
        /// The ActiveSync plugin's [plugins.<name>] entry.
        #[arg(long, default_value = "eas")]
        plugin: String,
    },
}

/// `switchboard mail …`
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Import messages (.eml files, or directories of them, walked recursively) into a user's
    /// mailbox, through the mail connector serving their domain (the built-in local store by
    /// default). Each file is streamed, never held in memory whole; a bad file is reported
    /// and the others go on. Run it while the server is stopped, or clients see the new mail
    /// at their next sync rather than at once.
    Import {
        /// The mailbox, e.g. alice@example.com (the user must exist).
        #[arg(long)]
        user: String,
        /// Folder name or id (default: the Inbox).
        #[arg(long)]
        folder: Option<String>,
        /// Message files and directories.
        #[arg(required = true, value_name = "FILE.eml|DIR")]
        paths: Vec<PathBuf>,
    },
}

/// `switchboard plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the plugins of the configuration: world, version, build, state, where they serve.
    List,
    /// Check a plugin manifest (plugin.toml) and load the file it names as the server would
    /// (compile, link against its world, type-check exports; or the native ABI stamp). Every
    /// problem is printed; exits non-zero if there is one.
    Verify {
        /// The manifest, or builtin:NAME for a plugin built into this binary.
        manifest: PathBuf,
    },
    /// Write a new plugin crate (source, manifests, README) from the SDK template.
    New {
        /// Plugin name, [a-z][a-z0-9-]*.
        name: String,
        /// http-frontend, sip-frontend, mail-connector or directory-connector.
        #[arg(long)]
        world: String,
        /// Directory to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Depend on a local switchboard-sdk checkout instead of crates.io.
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Show what a plugin manifest declares (world, SDK version, capabilities, settings), or,
    /// given a `.wasm` / `.so` file, what the file itself imports and exports.
    Inspect {
        /// The manifest, builtin:NAME, or a plugin file.
        manifest: PathBuf,
    },
}

/// `switchboard user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (its domain must exist). Prints a generated password unless --password-stdin.
    Add {
        /// Address, e.g. alice@example.com.
        address: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Set a user's password (also renews their SIP digest credentials).
    Passwd {
        /// Address.
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Block a user from logging in.
    Disable {
        /// Address.
        address: String,
    },
    /// Allow a disabled user to log in again.
    Enable {
        /// Address.
        address: String,
    },
}

/// `switchboard domain …`
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a mail domain.
    Add {
        /// Domain name, e.g. example.com.
        name: String,
    },
    /// List domains.
    List,
}

/// The config file to use: the flag, else `./switchboard.toml` if present.
pub fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| Some(PathBuf::from("switchboard.toml")).filter(|p| p.is_file()))
}

fn load_settings(path: Option<PathBuf>) -> Result<Settings, ExitCode> {
    load(&ConfigSource::from_process(path)).map_err(|e| {
        eprint!("error: {e}");
        ExitCode::from(2)
    })
}

/// Run the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let path = config_path(cli.config);
    match cli.command {
        Command::CheckConfig { file } => {
            let path = file.or(path);
            match load(&ConfigSource::from_process(path)) {
                Ok(s) => {
                    let origin = s.source.path.as_ref().map(|p| p.display().to_string());
                    say!(
                        "configuration OK ({})",
                        origin.as_deref().unwrap_or("built-in defaults")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprint!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Plugin(PluginCommand::List) => {
            let settings = match load_settings(path) {
                Ok(s) => s,
                Err(code) => return code,
            };
            plugin_list(&settings);
            ExitCode::SUCCESS
        }
        Command::Plugin(PluginCommand::New {
            name,
            world,
            dir,
            sdk_path,
        }) => plugin_new(&name, &world, dir, sdk_path),
        Command::Plugin(cmd) => plugin_command(cmd).await,
        Command::Serve => {
            let settings = match load_settings(path) {
                Ok(s) => s,
                Err(code) => return code,
            };
            crate::observability::init_tracing(&settings.config.log);
            match serve(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        command => {
            let settings = match load_settings(path) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match admin_command(command, &settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let running = server::start(settings).await?;
    if let Some(demo) = &running.demo_user {
        say!(
            "First start: created demo user {} with password {} (change it with `switchboard user passwd`)",
            demo.address, demo.password
        );
        if let Some(mut addr) = running.addrs.https.first().copied() {
            if addr.ip().is_unspecified() {
                addr.set_ip([127, 0, 0, 1].into());
            }
            say!("Try: curl -k https://{addr}/healthz");
        }
        let _ = std::io::stdout().flush();
    }
    wait_for_signals(&running).await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(running: &server::RunningServer) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading configuration");
                if let Err(e) = running.shared.reload().await {
                    metrics::counter!("config_reloads_total", "outcome" => "refused").increment(1);
                    tracing::error!("reload refused, the previous configuration keeps running:\n{e}");
                }
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_: &server::RunningServer) -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

async fn audit(storage: &Storage, action: &str, target: &str) {
    let entry = AuditEntry {
        actor: Some("cli".into()),
        action: action.into(),
        target: Some(target.into()),
        source: None,
        outcome: "ok".into(),
        detail: None,
    };
    if let Err(e) = storage.audit(&entry).await {
        eprintln!("warning: could not write the audit log: {e}");
    }
}

async fn admin_command(command: Command, settings: &Settings) -> anyhow::Result<()> {
    if let Command::Reload = command {
        return reload(settings).await;
    }
    let storage = server::open_storage(settings).await?;
    match command {
        Command::Migrate { status } => {
            if status {
                let pending = storage.pending_migrations().await?;
                if pending.is_empty() {
                    say!("database is up to date");
                }
                for m in pending {
                    say!("pending: {m}");
                }
            } else {
                say!("database is up to date");
            }
        }
        Command::Domain(DomainCommand::Add { name }) => {
            let d = storage.add_domain(&name).await?;
            audit(&storage, "domain.add", &d.name).await;
            say!("added domain {}", d.name);
        }
        Command::Domain(DomainCommand::List) => {
            for d in storage.list_domains().await? {
                say!("{}", d.name);
            }
        }
        Command::User(UserCommand::Add {
            address,
            display_name,
            password_stdin,
        }) => {
            let (password, generated) = choose_password(password_stdin)?;
            let u = storage
                .add_user(&address, &password, display_name.as_deref())
                .await?;
            audit(&storage, "user.add", &u.address).await;
            if generated {
                say!("added user {} with password {password}", u.address);
            } else {
                say!("added user {}", u.address);
            }
        }
        Command::User(UserCommand::List { domain }) => {
            for u in storage.list_users(domain.as_deref()).await? {
                let state = if u.disabled { "disabled" } else { "active" };
                say!(
                    "{}\t{}\t{}",
                    u.address,
                    state,
                    u.display_name.unwrap_or_default()
                );
            }
        }
        Command::User(UserCommand::Passwd {
            address,
            password_stdin,
        }) => {
            let (password, generated) = choose_password(password_stdin)?;
            storage.set_password(&address, &password).await?;
            audit(&storage, "user.passwd", &address).await;
            if generated {
                say!("new password for {address}: {password}");
            } else {
                say!("password changed for {address}");
            }
        }
        Command::User(UserCommand::Disable { address }) => {
            storage.set_disabled(&address, true).await?;
            audit(&storage, "user.disable", &address).await;
            say!("disabled {address}");
        }
        Command::User(UserCommand::Enable { address }) => {
            storage.set_disabled(&address, false).await?;
            audit(&storage, "user.enable", &address).await;
            say!("enabled {address}");
        }
        Command::Mail(MailCommand::Import {
            user,
            folder,
            paths,
        }) => mail_import(settings, storage, &user, folder.as_deref(), &paths).await?,
        Command::Device(cmd) => device_command(&storage, cmd).await?,
        Command::Serve | Command::CheckConfig { .. } | Command::Reload | Command::Plugin(_) => {}
    }
    Ok(())
}

/// `switchboard device …`: see [`DeviceCommand`].
async fn device_command(storage: &Storage, cmd: DeviceCommand) -> anyhow::Result<()> {
    use crate::device_admin::{Devices, WipeKind};
    match cmd {
        DeviceCommand::List { user, plugin } => {
            let devices = Devices::new(storage, &plugin).list(user.as_deref()).await?;
            if devices.is_empty() {
                say!("no devices");
            }
            for d in devices {
                say!(
                    "{}\t{}\t{}\t{}\t{}\twipe={}",
                    d.user,
                    d.device_id,
                    if d.device_type.is_empty() {
                        "-"
                    } else {
                        &d.device_type
                    },
                    if d.version.is_empty() {
                        "-"
                    } else {
                        &d.version
                    },
                    if d.provisioned {
                        "provisioned"
                    } else {
                        "not-provisioned"
                    },
                    d.wipe
                );
            }
        }
        DeviceCommand::Show {
            user,
            device,
            plugin,
        } => {
            let Some(d) = Devices::new(storage, &plugin).show(&user, &device).await? else {
                bail!("no device {device:?} for {user} (see `switchboard device list`)");
            };
            say!("user:         {}", d.user);
            say!("device:       {}", d.device_id);
            say!("type:         {}", d.device_type);
            say!("protocol:     {}", d.version);
            say!("provisioned:  {}", d.provisioned);
            say!("wipe:         {}", d.wipe);
            say!("folders sync: {}", if d.hierarchy { "yes" } else { "no" });
            say!("collections:  {}", d.collections);
            if let Some(seen) = &d.last_seen {
                say!("last seen:    {seen}");
            }
            for (k, v) in &d.info {
                say!("info.{k}: {v}");
            }
        }
        DeviceCommand::Wipe {
            user,
            device,
            account_only,
            plugin,
        } => {
            let kind = if account_only {
                WipeKind::AccountOnly
            } else {
                WipeKind::Full
            };
            Devices::new(storage, &plugin)
                .wipe(&user, &device, kind)
                .await?;
            audit(storage, "device.wipe", &format!("{user}/{device}")).await;
            say!(
                "{} wipe of {device} ({user}) requested: sent at the device's next request",
                if account_only {
                    "account-only"
                } else {
                    "remote"
                }
            );
        }
        DeviceCommand::Resync {
            user,
            device,
            plugin,
        } => {
            let n = Devices::new(storage, &plugin)
                .resync(&user, &device)
                .await?;
            audit(storage, "device.resync", &format!("{user}/{device}")).await;
            say!("dropped {n} sync state entries of {device} ({user}): it re-syncs from scratch");
        }
        DeviceCommand::Remove {
            user,
            device,
            plugin,
        } => {
            let n = Devices::new(storage, &plugin)
                .remove(&user, &device)
                .await?;
            audit(storage, "device.remove", &format!("{user}/{device}")).await;
            say!("removed {device} ({user}) and {n} state entries");
        }
    }
    Ok(())
}

/// `switchboard mail import`: see [`MailCommand::Import`].
async fn mail_import(
    settings: &Settings,
    storage: Storage,
    address: &str,
    folder: Option<&str>,
    paths: &[PathBuf],
) -> anyhow::Result<()> {
    use crate::mail_import as import;
    let who = import::principal(address)?;
    let address = who.address();
    if storage.user(&address).await?.is_none() {
        bail!("no user {address} (add it with `switchboard user add {address}`)");
    }
    let files = import::files(paths)?;
    let runtime = crate::plugins::PluginRuntime::new(settings, storage.clone());
    let plugins = crate::plugins::PluginSet::load(settings, &runtime)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = import::target(&plugins, who, folder).await?;
    let limit = settings.config.http.max_body_bytes;
    let mut imported = 0usize;
    let mut failed = 0usize;
    for file in &files {
        match import::import_file(&plugins, &target, file, limit).await {
            Ok(_) => imported += 1,
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", file.display());
            }
        }
    }
    if imported > 0 {
        audit(
            &storage,
            "mail.import",
            &format!("{address}/{}", target.folder.name),
        )
        .await;
    }
    say!(
        "imported {imported} of {} messages into {address}/{}",
        files.len(),
        target.folder.name
    );
    if failed > 0 {
        bail!(
            "{failed} of {} files could not be imported (see above)",
            files.len()
        );
    }
    Ok(())
}

fn plugin_list(settings: &Settings) {
    if settings.config.plugins.is_empty() {
        say!("no plugins configured ([plugins.<name>] in the configuration)");
        return;
    }
    say!(
        "{:<14} {:<20} {:<9} {:<8} {:<9} serves",
        "NAME",
        "WORLD",
        "VERSION",
        "BUILD",
        "STATE"
    );
    for (name, p) in &settings.config.plugins {
        let frontends: Vec<&str> = settings
            .config
            .frontends
            .iter()
            .filter(|(_, f)| f.plugin.as_deref() == Some(name.as_str()))
            .map(|(n, _)| n.as_str())
            .collect();
        match settings.plugin_manifests.get(name) {
            Some(m) => {
                let serves = match m.world {
                    World::MailConnector | World::DirectoryConnector => {
                        format!("domains {}", p.domains.join(", "))
                    }
                    _ => format!("frontends {}", frontends.join(", ")),
                };
                let build = match m.artifact {
                    Artifact::Wasm => "wasm",
                    Artifact::Native => "native",
                    Artifact::Builtin => "builtin",
                };
                say!(
                    "{name:<14} {:<20} {:<9} {build:<8} {:<9} {serves}",
                    m.world.to_string(),
                    m.version.to_string(),
                    "enabled"
                );
            }
            None => say!(
                "{name:<14} {:<20} {:<9} {:<8} {:<9} -",
                "-",
                "-",
                "-",
                "disabled"
            ),
        }
    }
    say!("(live state, faults and memory: GET /admin/status on the admin listener)");
}

fn plugin_new(
    name: &str,
    world: &str,
    dir: Option<PathBuf>,
    sdk_path: Option<PathBuf>,
) -> ExitCode {
    let Some(world) = World::parse(world) else {
        eprintln!("error: --world: unknown world \"{world}\" (known: http-frontend, sip-frontend, mail-connector, directory-connector)");
        return ExitCode::from(2);
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let sdk = match sdk_path {
        Some(p) => SdkDependency::Path(p),
        None => SdkDependency::Registry,
    };
    match scaffold(name, world, &dir, sdk) {
        Ok(files) => {
            say!("created {} ({world} plugin \"{name}\"):", dir.display());
            for f in files {
                say!("  {}", f.display());
            }
            say!("next: see {}/README.md to build it as a WebAssembly component and as a native library", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn plugin_command(cmd: PluginCommand) -> ExitCode {
    let (PluginCommand::Verify { manifest } | PluginCommand::Inspect { manifest }) = &cmd else {
        return ExitCode::from(2);
    };
    let ext = manifest.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(cmd, PluginCommand::Inspect { .. })
        && matches!(ext, "wasm" | "so" | "dylib" | "dll")
    {
        return match crate::plugins::set::inspect_file(manifest) {
            Ok(lines) => {
                for l in lines {
                    say!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", manifest.display());
                ExitCode::from(1)
            }
        };
    }
    let m = match load_manifest_ref(manifest) {
        Ok(m) => m,
        Err(e) => {
            eprint!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let kind = match m.artifact {
        Artifact::Wasm => "WebAssembly component (sandboxed)",
        Artifact::Native => "native library (trusted code, not sandboxed)",
        Artifact::Builtin => "built into this binary (native, trusted code, not sandboxed)",
    };
    match cmd {
        PluginCommand::Verify { .. } => {
            let pinned = if m.artifact == Artifact::Builtin {
                "no file to check"
            } else if m.sha256.is_some() {
                "file matches its sha256"
            } else {
                "file present, sha256 not pinned"
            };
            say!(
                "manifest OK: {} {}, {} world, SDK {}, {kind}; {pinned}",
                m.name,
                m.version,
                m.world,
                m.sdk
            );
            match crate::plugins::set::verify(&m).await {
                Ok(v) => {
                    say!(
                        "plugin OK: loads as {} and answers the host's type checks",
                        m.world
                    );
                    say!("  exports: {}", v.exports.join(", "));
                    say!("  imports: {}", v.imports.join(", "));
                }
                Err(e) => {
                    eprintln!("error: plugin {} {e}", m.name);
                    return ExitCode::from(1);
                }
            }
        }
        PluginCommand::Inspect { .. } => {
            say!("name:        {}", m.name);
            say!("version:     {}", m.version);
            say!("world:       {}", m.world);
            say!("sdk:         {} (this host: {HOST_SDK_VERSION})", m.sdk);
            say!("file:        {} — {kind}", m.file.display());
            say!(
                "sha256:      {}",
                m.sha256.as_deref().unwrap_or("(not pinned)")
            );
            let outbound: Vec<String> = m
                .outbound
                .iter()
                .map(|o| format!("{}:{}", o.host, o.port))
                .collect();
            say!(
                "outbound:    {}",
                if outbound.is_empty() {
                    "none".into()
                } else {
                    outbound.join(", ")
                }
            );
            say!("kv quota:    {} bytes", m.kv_quota_bytes);
            say!(
                "events:      {}",
                if m.events.is_empty() {
                    "none".into()
                } else {
                    m.events.join(", ")
                }
            );
            if !m.http_paths.is_empty() {
                say!("http paths:  {}", m.http_paths.join(", "));
            }
            for (name, s) in &m.settings {
                let default = s
                    .default
                    .as_ref()
                    .map(|d| format!(", default {d}"))
                    .unwrap_or_default();
                let required = if s.required { ", required" } else { "" };
                say!("setting:     {name} ({:?}{required}{default})", s.kind);
            }
        }
        PluginCommand::List | PluginCommand::New { .. } => return ExitCode::from(2),
    }
    ExitCode::SUCCESS
}

/// The password from standard input, or a generated one (`true` when generated, so the
/// caller prints it).
fn choose_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    Ok(if from_stdin {
        (read_password_stdin()?, false)
    } else {
        (random_password(), true)
    })
}

fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}

/// POST /admin/reload on the configured admin listener and print the answer.
async fn reload(settings: &Settings) -> anyhow::Result<()> {
    let Some(mut addr) = settings.addrs(Listener::Admin).first().copied() else {
        bail!("admin.listen is empty: the admin API is off, send SIGHUP to the server instead");
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let auth = settings
        .admin_token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| {
            format!("cannot reach the admin API at {addr} (admin.listen): is the server running?")
        })?;
    let request = format!(
        "POST /admin/reload HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let ok = head.starts_with("HTTP/1.1 200");
    let parsed: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    if ok {
        say!("reloaded: {}", parsed.get("report").unwrap_or(&parsed));
        Ok(())
    } else {
        let error = parsed.get("error").and_then(|e| e.as_str()).unwrap_or(body);
        bail!("reload refused, the server keeps its previous configuration:\n{error}")
    }
}
