//! The real `plangraph` binary as a separate process, a minimal HTTP client for it, and the
//! npm WebSocket clients of `tests/interop` as subprocesses.
//!
//! Everything here blocks and is bounded in time; every child is killed when its handle is
//! dropped, so a failing test leaves no process behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// How many of a child's last stderr lines are kept for failure messages.
const KEPT_LINES: usize = 300;

/// How long a server may take to say it is listening (migrations and the bundled import
/// included; parallel tests share two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one HTTP request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository's root (the `tests` crate's parent).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{} has no parent", manifest.display()))
}

/// `target/debug/plangraph`, next to the test binary's `deps/` directory.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()));
    let bin = profile_dir.join(format!("plangraph{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "the plangraph binary is missing at {}: run `cargo test --workspace`, which \
                 builds the binary (or `cargo build -p plangraph-server` first)",
                bin.display()
            )
        });
    // `cargo test -p plangraph-tests` alone does not rebuild the binary: refuse to test an
    // old one. Only the binary's own sources count (`src/` of each crate and of the
    // migrations), not test files, which a rebuild of the binary would not touch.
    let root = repo_root();
    let sources = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|krate| krate.path().join("src"))
        .chain([root.join("migrations").join("src")]);
    for dir in sources {
        if let Some(newer) = newer_source(&dir, built) {
            panic!(
                "the plangraph binary at {} is older than {}: run `cargo test --workspace`, \
                 which builds the binary (or `cargo build -p plangraph-server` first)",
                bin.display(),
                newer.display()
            );
        }
    }
    bin
}

/// A Rust source under `dir` changed after `built`, if any.
fn newer_source(dir: &Path, built: SystemTime) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if let Some(newer) = newer_source(&path, built) {
                return Some(newer);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && meta.modified().is_ok_and(|m| m > built)
        {
            return Some(path);
        }
    }
    None
}

/// The last lines a child wrote to stderr, shared with the thread that drains it.
#[derive(Debug, Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits for a child to exit, up to `timeout`; kills it if it does not.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Runs `plangraph ARGS` against `database_url` to completion (at most 60 s); its output.
pub fn plangraph(database_url: &str, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database_url)
        .env_remove("PLANGRAPH_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start plangraph");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let out_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let status = wait_bounded(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("plangraph {args:?} did not finish within 60 s"));
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Writes the synthetic load-test data set (`plangraph generate`) into the store at
/// `database_url`: `countries` × `years` reports.
pub fn generate(database_url: &str, countries: u32, years: u32) {
    let out = plangraph(
        database_url,
        &[
            "generate",
            "--countries",
            &countries.to_string(),
            "--years",
            &years.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "plangraph generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates an admin token in the store at `database_url` with `plangraph token create`; its
/// secret.
pub fn admin_token(database_url: &str) -> String {
    let out = plangraph(database_url, &["token", "create", "--role", "admin"]);
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!secret.is_empty(), "token create printed no secret");
    secret
}

/// A running `plangraph serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The bound address, `127.0.0.1:PORT`.
    pub addr: String,
    tail: Tail,
}

impl Server {
    /// Starts `plangraph serve --listen 127.0.0.1:0` on `database_url` and waits until it
    /// logs the address it listens on.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// [`Server::start`] with more arguments for `serve`.
    pub fn start_with(database_url: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", database_url)
            .env("PLANGRAPH_LOG_FORMAT", "json")
            // The change listener's reconnects are logged at debug level.
            .env("RUST_LOG", "info,plangraph_persistence=debug")
            .env_remove("PLANGRAPH_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start plangraph serve");
        let stderr = child.stderr.take().expect("stderr");
        let tail = Tail::default();
        let (addr_tx, addr_rx) = mpsc::channel();
        let drained = tail.clone();
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if addr_tx.is_some()
                    && let Ok(json) = serde_json::from_str::<Value>(&line)
                    && let Some(addr) = json["fields"]["addr"].as_str()
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
                drained.push(line);
            }
        });
        let addr = match addr_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "plangraph serve did not log its address within {START_TIMEOUT:?}:\n{}",
                    tail.text()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = wait_bounded(&mut child, Duration::from_secs(5));
                panic!(
                    "plangraph serve exited before listening ({status:?}):\n{}",
                    tail.text()
                );
            }
        };
        Self { child, addr, tail }
    }

    /// The WebSocket URL of `/graphql`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// The last lines the server logged.
    pub fn logs(&self) -> String {
        self.tail.text()
    }

    /// POSTs a GraphQL request to `/graphql`; `Err` only when HTTP itself failed.
    pub fn try_graphql(&self, query: &str, token: Option<&str>) -> std::io::Result<(u16, Value)> {
        post_json(&self.addr, "/graphql", &json!({ "query": query }), token)
    }

    /// POSTs a GraphQL request that must succeed (200, no errors); its `data`.
    pub fn data(&self, query: &str, token: Option<&str>) -> Value {
        let (status, body) = self
            .try_graphql(query, token)
            .unwrap_or_else(|e| panic!("POST /graphql failed: {e}\nserver log:\n{}", self.logs()));
        assert!(
            status == 200
                && body
                    .get("errors")
                    .is_none_or(|e| e.as_array().is_some_and(Vec::is_empty)),
            "{query} answered {status} {body:#}\nserver log:\n{}",
            self.logs()
        );
        body["data"].clone()
    }

    /// The Peru 2023 report's current revision.
    pub fn peru_revision(&self) -> i64 {
        let data = self.data(
            r#"{ country(iso3: "PER") { report(year: 2023) { id revision } } }"#,
            None,
        );
        assert_eq!(data["country"]["report"]["id"], "1", "{data}");
        data["country"]["report"]["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("no revision in {data}"))
    }
}

impl Server {
    /// Sends SIGTERM; waits for the process to exit (at most `within`) and gives its status.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_bounded(&mut self.child, within)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP/1.1 POST of a JSON body, with an optional bearer token: the status and the
/// body as JSON (a body that is not JSON comes back as a JSON string).
pub fn post_json(
    addr: &str,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    post_json_with_head(addr, path, body, token).map(|(status, _, json)| (status, json))
}

/// [`post_json`], also giving the response's head (status line and headers) as text.
pub fn post_json_with_head(
    addr: &str,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> std::io::Result<(u16, String, Value)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let (status, head, text) = http_request(addr, "POST", path, &headers, Some(&body.to_string()))?;
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, head, json))
}

/// One HTTP/1.1 request on a connection of its own (closed after it): the status, the head
/// (status line and headers) and the body, de-chunked.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let (mut reader, head) = open_request(addr, method, path, headers, body)?;
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw)?;
    let invalid = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}: {head}{}", String::from_utf8_lossy(&raw)),
        )
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    if chunked {
        raw = dechunk(&raw).ok_or_else(|| invalid("bad chunked body"))?;
    }
    Ok((status, head, String::from_utf8_lossy(&raw).into_owned()))
}

/// Sends one request and reads its head: the reader is left at the start of the body (raw,
/// chunk framing included), for streams read as they come.
pub fn open_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(BufReader<TcpStream>, String)> {
    let socket = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method != "GET" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    Ok((reader, head))
}

/// Reads one chunk of a `Transfer-Encoding: chunked` body as it comes: its data, or `None` at
/// the last chunk, the end of the connection or the read timeout.
pub fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data).ok()?;
    data.truncate(size);
    Some(data)
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `tests/interop`, with its pinned clients installed: like the Postgres cluster, the suite
/// provides what it needs, here by `npm ci` from the lock file, once per test process.
pub fn interop_clients() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let interop = repo_root().join("tests").join("interop");
    let installed = INSTALLED.get_or_init(|| {
        if interop.join("node_modules").is_dir() {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&interop)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `npm` (Node >= 20 and npm are needed): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`npm ci` in {} failed: {}",
                interop.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = installed {
        panic!("{message}");
    }
    interop
}

/// A `node tests/interop/subscribe.mjs …` child: its stdout lines as they come, its stderr
/// kept for failure messages; killed when dropped.
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
    stderr: Tail,
}

impl Subscriber {
    /// Starts `subscribe.mjs` with these arguments (`--url`, `--protocol`, `--query`, …).
    pub fn start(args: &[&str]) -> Self {
        let interop = interop_clients();
        let mut child = Command::new("node")
            .arg(interop.join("subscribe.mjs"))
            .args(args)
            .current_dir(&interop)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node >= 20 is needed): {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let tail = Tail::default();
        let drained = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                drained.push(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            stderr: tail,
        }
    }

    /// What the client printed so far, stdout then stderr.
    pub fn transcript(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr.text()
        )
    }

    /// The next stdout line, if one comes within `timeout` (`None` also once stdout closed).
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Waits for the next line and requires its `type`; returns the raw line.
    pub fn expect_line(&mut self, kind: &str, timeout: Duration) -> String {
        let line = self.next_line(timeout).unwrap_or_else(|| {
            panic!("no {kind:?} line within {timeout:?}\n{}", self.transcript())
        });
        let json: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", self.transcript()));
        assert_eq!(json["type"], kind, "{}", self.transcript());
        line
    }

    /// Waits (at most `timeout`) for the client to exit; its exit code and every stdout line
    /// it printed. Kills it and panics if it does not exit in time.
    pub fn finish(&mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        let Some(status) = wait_bounded(&mut self.child, timeout) else {
            panic!(
                "the subscriber did not exit within {timeout:?}\n{}",
                self.transcript()
            );
        };
        // The reader thread ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.clone())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python script (`python3`, or `PLANGRAPH_PYTHON`, the one `.ci/run` picks when the
/// first `python3` lacks `jsonschema`) with `args`, to completion.
pub fn python(script: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let python = std::env::var("PLANGRAPH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (PLANGRAPH_PYTHON): {e}"))
}
