//! Throwaway PostgreSQL databases for integration tests.
//!
//! Every [`PgDatabase`] is a freshly created, uniquely named database (`sb_test_<pid>_<random>`)
//! that is dropped again (`DROP DATABASE ... WITH (FORCE)`) when the value is dropped, also when
//! the test panics. Tests therefore never share state and can run in parallel, in threads
//! (`cargo test`) or in separate processes (`cargo nextest`).
//!
//! Which server the databases are created on is decided once per test process:
//!
//! 1. `SWITCHBOARD_TEST_PG_URL`, if set: an admin URL such as
//!    `postgres://postgres@127.0.0.1:5432/postgres` (the user must be allowed to create
//!    databases). If it cannot be reached, the tests fail; nothing else is tried.
//! 2. `SWITCHBOARD_TEST_FORCE_THROWAWAY_PG=1`: a throwaway server, see below.
//! 3. `postgres://postgres@127.0.0.1:5432/postgres` (trust authentication), if it accepts a
//!    connection.
//! 4. Otherwise a throwaway server: `initdb -A trust -U postgres` into a temporary directory and
//!    `pg_ctl start` on a free loopback port. The binaries are looked up on `PATH` and under
//!    `/usr/lib/postgresql/*/bin` (Debian's layout; install the `postgresql` package). initdb
//!    refuses to run as root, so as root they run as the `postgres` user (via `runuser`, or
//!    `su` where there is no `runuser`) in a directory owned by that user.
//!
//! The throwaway server lives as long as the test process: a small watchdog shell process
//! (`sh`, ignoring SIGINT/SIGTERM/SIGHUP) blocks reading a pipe whose write end only this
//! process holds; when the process exits in any way, the pipe closes and the watchdog runs
//! `pg_ctl stop -m immediate` and deletes the directory. Under nextest, where every test is its
//! own process, each Postgres test starts its own server (a few seconds each), which is only a
//! fallback for machines without a server on 5432.
//!
//! Dependencies: tokio, tempfile, anyhow, rand, and sqlx (reached through
//! `switchboard_storage::sea_orm::sqlx`; in another crate use that or a direct sqlx dependency
//! with the `postgres` and `runtime-tokio` features). Unix only.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use switchboard_storage::sea_orm::sqlx::postgres::PgConnection;
use switchboard_storage::sea_orm::sqlx::{Connection as _, Executor as _};

/// The server tried when `SWITCHBOARD_TEST_PG_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Environment variable: admin URL of the server to use.
pub const ENV_URL: &str = "SWITCHBOARD_TEST_PG_URL";
/// Environment variable: `1` to always use a throwaway server.
pub const ENV_FORCE_THROWAWAY: &str = "SWITCHBOARD_TEST_FORCE_THROWAWAY_PG";

/// How long connecting to a server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database created for one test, dropped when this value is dropped.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates a database on the server chosen as described in the module documentation.
    pub async fn create() -> Result<PgDatabase> {
        let admin_url = admin_url().await?;
        PgDatabase::create_on(&admin_url).await
    }

    /// Creates a database on the server behind `admin_url`.
    pub async fn create_on(admin_url: &str) -> Result<PgDatabase> {
        PgDatabase::create_with(admin_url, "").await
    }

    /// Creates a database on the server behind `admin_url`, appending `options` to the
    /// `CREATE DATABASE` statement (e.g. `LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`).
    pub async fn create_with(admin_url: &str, options: &str) -> Result<PgDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sb_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let url = with_database(admin_url, &name)?;
        let mut conn = connect(admin_url).await?;
        // template0: nobody is ever connected to it, so parallel CREATE DATABASEs do not fail
        // with "source database is being accessed by other users" as they can with template1.
        conn.execute(
            format!(r#"CREATE DATABASE "{name}" TEMPLATE template0 ENCODING 'UTF8' {options}"#)
                .as_str(),
        )
        .await
        .with_context(|| format!("creating test database {name}"))?;
        let _ = conn.close().await;
        Ok(PgDatabase {
            name,
            url,
            admin_url: admin_url.to_owned(),
        })
    }

    /// URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of the test database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Admin URL of the server the database lives on.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot be async and may run inside a runtime: use a thread with its own one.
        let outcome = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(drop_database(&admin_url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = connect(admin_url).await?;
    let forced = conn
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await;
    if forced.is_err() {
        // PostgreSQL before 13 has no WITH (FORCE).
        conn.execute(
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            .as_str(),
        )
        .await?;
        conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}""#).as_str())
            .await?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// Connects with a timeout.
pub async fn connect(url: &str) -> Result<PgConnection> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| anyhow!("timed out connecting to {url}"))?
        .with_context(|| format!("connecting to {url}"))
}

/// Checks that a server accepts connections and queries.
async fn probe(url: &str) -> Result<()> {
    let mut conn = connect(url).await?;
    conn.execute("SELECT 1").await?;
    let _ = conn.close().await;
    Ok(())
}

/// The admin URL of the server test databases are created on (chosen once per process).
pub async fn admin_url() -> Result<String> {
    static CHOICE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    CHOICE
        .get_or_try_init(|| async {
            if let Ok(url) = std::env::var(ENV_URL) {
                probe(&url)
                    .await
                    .with_context(|| format!("{ENV_URL} is set but the server does not answer"))?;
                return Ok(url);
            }
            if std::env::var(ENV_FORCE_THROWAWAY).is_ok_and(|v| v == "1") {
                return throwaway_admin_url().await;
            }
            match probe(DEFAULT_ADMIN_URL).await {
                Ok(()) => Ok(DEFAULT_ADMIN_URL.to_owned()),
                Err(e) => {
                    eprintln!("no usable PostgreSQL at {DEFAULT_ADMIN_URL} ({e:#}); starting a throwaway server");
                    throwaway_admin_url().await
                }
            }
        })
        .await
        .cloned()
}

/// The admin URL of this process's throwaway server, starting it on first use.
pub async fn throwaway_admin_url() -> Result<String> {
    static SERVER: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let started = tokio::task::spawn_blocking(|| {
        SERVER
            .get_or_init(|| start_throwaway().map_err(|e| format!("{e:#}")))
            .clone()
    })
    .await?;
    started.map_err(|e| anyhow!("starting a throwaway PostgreSQL server failed: {e}"))
}

/// Replaces the database name (the URL path) of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> Result<String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| anyhow!("{url} is not a postgres:// URL"))?
        + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{database}{query}", &base[..authority_end]))
}

/// Who to run the server binaries as: `None` for this process's user.
struct RunAs {
    user: &'static str,
    uid: u32,
    gid: u32,
}

fn start_throwaway() -> Result<String> {
    let bin = find_postgres_bin()?;
    let run_as = if output_of("id", &["-u"])? == "0" {
        let uid = output_of("id", &["-u", "postgres"]).context(
            "running as root: initdb refuses that and there is no \"postgres\" user to run it as",
        )?;
        let gid = output_of("id", &["-g", "postgres"])?;
        Some(RunAs {
            user: "postgres",
            uid: uid.parse()?,
            gid: gid.parse()?,
        })
    } else {
        None
    };

    let dir = tempfile::Builder::new()
        .prefix("sb-pg-")
        .tempdir()
        .context("creating a temporary directory")?
        // Removed by the watchdog, after the server has stopped.
        .keep();
    if let Some(r) = &run_as {
        std::os::unix::fs::chown(&dir, Some(r.uid), Some(r.gid))
            .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
    }
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let pg_ctl = bin.join("pg_ctl");

    spawn_watchdog(&dir, &pg_ctl, &data, run_as.as_ref())?;

    let mut initdb = command(&bin.join("initdb"), run_as.as_ref());
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "-N",
    ]);
    run(initdb, &dir).context("initdb")?;

    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-k {} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let mut start = command(&pg_ctl, run_as.as_ref());
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        match run(start, &dir) {
            Ok(()) => {
                let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                eprintln!("started throwaway PostgreSQL at {url} in {}", dir.display());
                return Ok(url);
            }
            Err(e) => {
                let log_tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log_tail.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                last_error =
                    Some(e.context(format!("pg_ctl start; server log:\n{}", tail.join("\n"))));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("pg_ctl start failed")))
}

/// Starts the process that stops the server and removes `dir` once this process is gone.
fn spawn_watchdog(dir: &Path, pg_ctl: &Path, data: &Path, run_as: Option<&RunAs>) -> Result<()> {
    let stop = command(pg_ctl, run_as);
    let mut argv = vec![stop.get_program().to_os_string()];
    argv.extend(stop.get_args().map(|a| a.to_os_string()));
    let mut watchdog = Command::new("sh");
    watchdog
        .arg("-c")
        .arg(
            r#"trap '' INT TERM HUP
cat >/dev/null
dir=$1; data=$2; shift 2
"$@" -D "$data" -m immediate stop >/dev/null 2>&1
rm -rf "$dir""#,
        )
        .arg("sb-pg-watchdog")
        .arg(dir)
        .arg(data)
        .args(argv)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = watchdog.spawn().context("starting the watchdog shell")?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("watchdog has no stdin"))?;
    // Nothing is ever written, but make sure the pipe works.
    stdin.flush()?;
    // Deliberately leaked: the write end must stay open exactly as long as this process lives
    // (the kernel closes it at exit). std creates pipes close-on-exec, so other children of
    // this process do not inherit it.
    std::mem::forget(stdin);
    std::mem::forget(child);
    Ok(())
}

/// A command running `program`, as the given user if any.
fn command(program: &Path, run_as: Option<&RunAs>) -> Command {
    let Some(r) = run_as else {
        return Command::new(program);
    };
    if let Some(runuser) = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    {
        let mut c = Command::new(runuser);
        c.args(["-u", r.user, "--"]).arg(program);
        c
    } else {
        // su passes the arguments after the command string to the shell as $0, $1, ...
        let mut c = Command::new("su");
        c.args([r.user, "-s", "/bin/sh", "-c", r#"exec "$0" "$@""#])
            .arg(program);
        c
    }
}

/// Runs a command to completion in `cwd`, failing with its output if it fails.
fn run(mut cmd: Command, cwd: &Path) -> Result<()> {
    let output = cmd
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{:?} {:?} failed ({}):\n{}{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Trimmed stdout of a successful command.
fn output_of(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_postgres_bin() -> Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Ok(dir);
            }
        }
    }
    // Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, newest first.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow!(
            "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH or under \
             /usr/lib/postgresql/*/bin; install them (Debian: apt install postgresql) or set \
             {ENV_URL} to a server's admin URL"
        )
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_names() {
        let r = |u: &str| super::with_database(u, "x").unwrap();
        assert_eq!(r("postgres://p@h:1/postgres"), "postgres://p@h:1/x");
        assert_eq!(r("postgres://p@h:1"), "postgres://p@h:1/x");
        assert_eq!(
            r("postgres://p@h/db?sslmode=disable"),
            "postgres://p@h/x?sslmode=disable"
        );
    }
}
