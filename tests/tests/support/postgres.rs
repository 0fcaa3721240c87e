//! Throwaway Postgres clusters for the test process, started from the machine's Postgres
//! binaries (`PG_BIN`, default `/usr/lib/postgresql/15/bin`).
//!
//! `initdb` and `postgres` refuse to run as root, so as root they run as the `postgres` user.
//! The shared cluster ([`cluster`]) is started once per test process; a test that stops or
//! restarts its database takes a private one ([`Cluster::private`]) with its own port and data
//! directory, through the same code. A small watchdog stops each cluster and removes its
//! directory when the process ends (a private one is also stopped and removed when dropped).
//! Postgres is required: a machine without it fails the Postgres tests instead of skipping
//! them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One running (or stopped) cluster: where it lives and how to reach it.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    bin: PathBuf,
    root: bool,
    /// The directory holding `data/`, the log and the socket; removed when the cluster goes.
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
}

/// A cluster of one test's own, stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivateCluster(Cluster);

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);
static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);

/// Where the Postgres 15 binaries are: `PG_BIN`, or Debian's directory.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner (`postgres` when we are root).
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Cluster {
    /// Creates a cluster in a new directory, on a free port, and starts it.
    fn create() -> Result<Self, String> {
        let bin = bin_dir();
        if !bin.join("postgres").exists() {
            return Err(format!(
                "Postgres binaries not found in {} (install postgresql-15 or set PG_BIN)",
                bin.display()
            ));
        }
        let root = is_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "plangraph-pg-{}-{}-{nanos}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if root {
            run(
                Command::new("chown").arg("postgres:postgres").arg(&dir),
                "chown",
            )?;
        }
        let data = dir.join("data");
        run(
            as_owner(&bin.join("initdb"), root)
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]),
            "initdb",
        )?;
        let cluster = Self {
            port: free_port()?,
            log: dir.join("postgres.log"),
            bin,
            root,
            dir,
            data,
        };
        // Stop the cluster and remove it when this test process is gone.
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {owner}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            owner = if root { "runuser -u postgres -- " } else { "" },
            pg_ctl = cluster.bin.join("pg_ctl").display(),
            data = cluster.data.display(),
            dir = cluster.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cluster watchdog: {e}"))?;
        cluster.try_start()?;
        Ok(cluster)
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = as_owner(&self.bin.join("pg_ctl"), self.root);
        cmd.arg("-D").arg(&self.data);
        cmd
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    fn try_start(&self) -> Result<(), String> {
        run(
            self.pg_ctl()
                .arg("-l")
                .arg(&self.log)
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    self.port,
                    self.dir.display()
                ))
                .arg("start"),
            "pg_ctl start",
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "Postgres did not start on port {}: {}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The cluster's server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A new empty database in the cluster; its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let store = plangraph_persistence::Store::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test cluster: {e}"));
        use sea_orm::ConnectionTrait;
        store
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A cluster of the caller's own, for tests that stop and start it.
    pub fn private() -> PrivateCluster {
        PrivateCluster(
            Self::create()
                .unwrap_or_else(|message| panic!("cannot start a private cluster: {message}")),
        )
    }
}

impl PrivateCluster {
    /// Stops the cluster (`pg_ctl -m fast stop`: clients are disconnected, nothing is lost);
    /// returns once it is down.
    pub fn stop(&self) {
        run(self.0.pg_ctl().args(["-m", "fast", "stop"]), "pg_ctl stop")
            .unwrap_or_else(|message| panic!("{message}\n{}", self.0.log()));
    }

    /// Starts the stopped cluster again, on the same port; returns once it accepts
    /// connections.
    pub fn start(&self) {
        self.0
            .try_start()
            .unwrap_or_else(|message| panic!("{message}"));
    }
}

impl std::ops::Deref for PrivateCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.0
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self
            .0
            .pg_ctl()
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// The process's shared cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(Cluster::create) {
        Ok(cluster) => cluster,
        Err(message) => panic!("the Postgres tests need a cluster: {message}"),
    }
}

/// A new empty database in the shared cluster; its URL.
pub async fn fresh_database() -> String {
    cluster().create_database().await
}
