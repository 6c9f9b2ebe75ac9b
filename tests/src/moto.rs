//! A moto server (S3, STS, IAM) of a test's own on a loopback port, started from the venv that
//! `cargo xtask test` prepares, stopped when dropped. One per test, so a test that turns IAM
//! enforcement on touches nobody else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::stack::{free_port, WAIT};

/// The `moto_server` executable; set by `cargo xtask test`.
pub const MOTO_SERVER_VARIABLE: &str = "ORGTRAIL_TEST_MOTO_SERVER";

pub struct MotoServer {
    /// None when attached to a server started by someone else.
    child: Option<Child>,
    pub address: SocketAddr,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        let program = std::env::var_os(MOTO_SERVER_VARIABLE).map(PathBuf::from).unwrap_or_else(|| {
            panic!("{MOTO_SERVER_VARIABLE} is not set: run the tests with `cargo xtask test`, which installs moto's server and starts the services the tests need")
        });
        let mut last_output = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log_path = std::env::temp_dir().join(format!("orgtrail-test-moto-{port}.log"));
            let log = std::fs::File::create(&log_path)
                .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_path.display()));
            let child = Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.display()));
            let mut server = MotoServer {
                child: Some(child),
                address: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            let deadline = Instant::now() + WAIT;
            loop {
                if server
                    .request("GET", "/moto-api/", &[])
                    .is_some_and(|status| status == 200)
                {
                    let _ = std::fs::remove_file(&log_path);
                    return server;
                }
                if let Some(Ok(Some(_))) = server.child.as_mut().map(Child::try_wait) {
                    // Most likely the port was taken meanwhile: try another.
                    last_output = std::fs::read_to_string(&log_path).unwrap_or_default();
                    break;
                }
                if Instant::now() > deadline {
                    panic!("moto's server did not answer within {WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto's server did not start:\n{last_output}");
    }

    /// A server started elsewhere (`http://127.0.0.1:PORT`).
    pub fn attach(endpoint: &str) -> Result<MotoServer, String> {
        let address = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|error| format!("{endpoint} is not http://IP:PORT: {error}"))?;
        Ok(MotoServer {
            child: None,
            address,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// From now on moto checks every request against IAM: users' and roles' policies.
    pub fn enforce_iam(&self) {
        let status = self.request("POST", "/moto-api/reset-auth", b"0");
        assert_eq!(status, Some(200), "moto did not turn IAM enforcement on");
    }

    /// A bare HTTP/1.1 request; the status code, if any answer came.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Option<u16> {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(2)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        answer.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
