//! A throwaway PostgreSQL cluster on loopback: `initdb` into a fresh directory, `pg_ctl start`
//! on a free port, and on drop `pg_ctl stop -m immediate` and the directory removed. As root
//! the server runs as the `postgres` user (initdb and postgres refuse uid 0).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::prerequisites::{find_postgres_bin_dir, is_root};

pub struct ThrowawayPostgres {
    dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl ThrowawayPostgres {
    pub fn start() -> anyhow::Result<ThrowawayPostgres> {
        let bin_dir = find_postgres_bin_dir()?;
        remove_stale_clusters();
        let as_postgres_user = is_root();
        let dir = std::env::temp_dir().join(format!(
            "orgtrail-pg-{}-{}",
            std::process::id(),
            crate::unique_suffix()
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let port = crate::free_port()?;
        let cluster = ThrowawayPostgres {
            dir,
            bin_dir,
            port,
            as_postgres_user,
        };
        if as_postgres_user {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&cluster.dir))
                .context("cannot hand the cluster directory to the postgres user (does the user exist? apt-get install -y postgresql-15 creates it)")?;
        }
        let data = cluster.dir.join("data");
        cluster
            .run_pg(
                "initdb",
                &[
                    "-D",
                    path_str(&data)?,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
            )
            .context("initdb failed")?;
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=256MB",
            dir = path_str(&cluster.dir)?,
        );
        let log = cluster.dir.join("server.log");
        let started = cluster.run_pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        if let Err(error) = started {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("PostgreSQL did not start: {error:#}\n{server_log}");
        }
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// CPU seconds the server has used so far: the postmaster and its processes, backends
    /// included (see [`crate::processes::cpu_seconds`]).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid_file = self.dir.join("data/postmaster.pid");
        let postmaster: u32 = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("cannot read {}", pid_file.display()))?
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .with_context(|| format!("no pid in {}", pid_file.display()))?;
        crate::processes::cpu_seconds(postmaster)
    }

    /// Runs SQL through psql against `database`.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = Command::new(self.bin_dir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(database),
                "-c",
                sql,
            ])
            .output()
            .context("cannot run psql")?;
        if !output.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn run_pg(&self, program: &str, arguments: &[&str]) -> anyhow::Result<()> {
        let binary = self.bin_dir.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        command.args(arguments).current_dir(&self.dir);
        run(&mut command)
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if let Some(data) = data.to_str() {
            let _ = self.run_pg(
                "pg_ctl",
                &["-D", data, "-m", "immediate", "-w", "-t", "20", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Removes the directories of clusters whose server is gone (a run killed before cleanup):
/// neither the xtask that made them (its pid is in the name) nor their server is alive.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("orgtrail-pg-") {
            continue;
        }
        let process_alive =
            |pid: &str| !pid.is_empty() && Path::new("/proc").join(pid.trim()).exists();
        let owner_alive = name
            .to_string_lossy()
            .trim_start_matches("orgtrail-pg-")
            .split('-')
            .next()
            .is_some_and(process_alive);
        let server_alive = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_string))
            .is_some_and(|pid| process_alive(&pid));
        if !owner_alive && !server_alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
