//! A PostgreSQL server of a test's own, for tests that restart it (never the shared
//! server's). Started the way `scripts/services` starts the shared one: `initdb` and
//! `pg_ctl` from the newest installed version, as `postgres` via `runuser` when we are root
//! (PostgreSQL refuses to run as root), in a temp dir, on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// Seconds `pg_ctl` waits for a start, stop or restart before it gives up.
const PG_CTL_WAIT: &str = "20";

/// A PostgreSQL cluster in a temp dir, stopped (`-m immediate`, then SIGKILL to the
/// postmaster if that fails) and removed when dropped, so a failing test leaves no server.
pub struct OwnPostgres {
    bindir: PathBuf,
    data: PathBuf,
    port: u16,
    // Last: dropped (removed) after the server is stopped.
    dir: TempDir,
}

impl OwnPostgres {
    /// Runs `initdb` and starts the server; panics with the server's log if either fails.
    pub fn start() -> Self {
        let bindir = bindir();
        let dir = tempfile::Builder::new().prefix("own-postgres").tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create data dir");
        if is_root() {
            // The `postgres` user must reach its data dir (and own it).
            set_mode(dir.path(), 0o755);
            let owner = Command::new("chown").args(["postgres:postgres"]).arg(&data).output();
            check("chown postgres", owner);
        }
        set_mode(&data, 0o700);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Self { bindir, data, port, dir };
        // Trust auth on loopback: a throwaway cluster. fsync off for speed; a fast shutdown
        // still writes every committed row out, which is all a restart needs.
        let initdb = server
            .as_postgres("initdb")
            .arg("-D")
            .arg(&server.data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output();
        check("initdb", initdb);
        server.start_again();
        server
    }

    /// Starts the stopped server again, on the same port with the same data.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.data.display()
        );
        let started = self.pg_ctl().args(["-o", &options, "-l"]).arg(self.log()).arg("start").output();
        self.check_pg_ctl("pg_ctl start", started);
    }

    /// `pg_ctl stop -m fast`: connections are terminated and every committed transaction
    /// is written out. Blocking; returns once the server is gone.
    pub fn stop_fast(&self) {
        let stopped = self.pg_ctl().args(["-m", "fast", "stop"]).output();
        self.check_pg_ctl("pg_ctl stop", stopped);
    }

    /// A URL for the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: open connections are terminated, every committed
    /// transaction is written out, and the server comes back on the same port. Blocking;
    /// returns once the new server accepts connections.
    pub fn restart_fast(&self) {
        let restarted = self.pg_ctl().args(["-m", "fast", "-l"]).arg(self.log()).arg("restart").output();
        self.check_pg_ctl("pg_ctl restart", restarted);
    }

    fn log(&self) -> PathBuf {
        // In the data dir: the only place the `postgres` user may write.
        self.data.join("log")
    }

    /// `pg_ctl -D <data> -w -t <wait>`, as the cluster's owner.
    fn pg_ctl(&self) -> Command {
        let mut cmd = self.as_postgres("pg_ctl");
        cmd.arg("-D").arg(&self.data).args(["-w", "-t", PG_CTL_WAIT]);
        cmd
    }

    /// The tool `name` of our PostgreSQL version, run as `postgres` when we are root, from
    /// the data dir so it does not warn that it cannot read root's working directory.
    fn as_postgres(&self, name: &str) -> Command {
        let tool = self.bindir.join(name);
        let mut cmd = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(tool);
            cmd
        } else {
            Command::new(tool)
        };
        cmd.current_dir(&self.data).stdin(Stdio::null());
        cmd
    }

    fn check_pg_ctl(&self, what: &str, output: std::io::Result<Output>) {
        if !succeeded(&output) {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
            panic!("{what} failed: {}\n--- server log ---\n{}", describe(&output), tail.join("\n"));
        }
    }

    /// The postmaster's PID, from `postmaster.pid`, if the server is running.
    fn postmaster_pid(&self) -> Option<u32> {
        let pidfile = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pidfile.lines().next()?.trim().parse().ok()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let pid = self.postmaster_pid();
        let stopped = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .output();
        if succeeded(&stopped) {
            return;
        }
        // Only a process whose working directory is our data dir is ours: the postmaster
        // chdirs there, and a reused PID would not.
        let Some(pid) = pid else { return };
        let ours =
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&self.data));
        if ours {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout, what `scripts/services` uses).
fn bindir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let newest_debian = || {
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, dir)| dir)
    };
    from_pg_config
        .into_iter()
        .chain(newest_debian())
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .expect("no PostgreSQL server binaries (initdb, pg_ctl): scripts/services installs them")
}

fn is_root() -> bool {
    // No libc in the tests: the owner of our own /proc entry is our effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn succeeded(output: &std::io::Result<Output>) -> bool {
    output.as_ref().is_ok_and(|o| o.status.success())
}

fn describe(output: &std::io::Result<Output>) -> String {
    match output {
        Ok(o) => format!(
            "{}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(err) => err.to_string(),
    }
}

fn check(what: &str, output: std::io::Result<Output>) {
    assert!(succeeded(&output), "{what} failed: {}", describe(&output));
}
