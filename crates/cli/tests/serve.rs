//! `mixed-r1 serve` as an operator runs it: the real binary on a free loopback port, a request,
//! then SIGTERM (or Ctrl-C) with a request still in flight, and a clean exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log",
                "debug",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("mixed-r1 reward server listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits (bounded) for the process to exit; returns its status and its stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (status, err);
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                panic!("the server did not exit within 15 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn head(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Reads a `Connection: close` response to the end: (status, body).
fn read_response(s: &mut TcpStream) -> (u16, serde_json::Value) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

const BODY: &str = r#"{"query": ["<|im_start|>user\nIs it red?<|im_end|>\n<|im_start|>assistant\n<think>It is.</think><answer>Yes</answer><|im_end|>"], "prompts": ["<|im_start|>user\nIs it red?<|im_end|>\n<|im_start|>assistant\n"], "labels": ["{\"task\": \"yes_no\", \"answer\": \"yes\"}"]}"#;

#[test]
fn serves_then_stops_cleanly_on_sigterm_finishing_the_request_in_flight() {
    let server = Server::start(&[]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(head("/get_reward", BODY.len()).as_bytes())
        .unwrap();
    s.write_all(BODY.as_bytes()).unwrap();
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rewards"], serde_json::json!([1.5]));
    assert_eq!(body["scores"], serde_json::json!([1.0]));

    // Half a request in, then SIGTERM: the server must finish it before exiting.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(head("/get_reward", BODY.len()).as_bytes())
        .unwrap();
    s.write_all(&BODY.as_bytes()[..40]).unwrap();
    thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(200));
    s.write_all(&BODY.as_bytes()[40..]).unwrap();
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rewards"], serde_json::json!([1.5]));

    let (status, stderr) = server.wait();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("mixed-r1 reward server listening"),
        "{stderr}"
    );
    assert!(stderr.contains("shutdown signal"), "{stderr}");
    assert!(
        stderr.contains("mixed-r1 reward server stopped"),
        "{stderr}"
    );
    // --log debug: one line per request.
    assert_eq!(
        stderr.matches("path=\"/get_reward\" status=200").count(),
        2,
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_an_idle_server() {
    let server = Server::start(&["--default-task", "mcq", "--max-batch", "8"]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, body) = read_response(&mut s);
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    assert_eq!(body["default_task"], "mcq");
    assert_eq!(body["max_batch"], 8);
    server.signal(libc::SIGINT);
    let (status, stderr) = server.wait();
    assert!(status.success(), "{status:?}\n{stderr}");
}

#[test]
fn bad_options_are_refused_before_listening() {
    let out = Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
        .args(["serve", "--port", "0", "--default-task", "haiku"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("haiku"));
    let out = Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
        .args(["serve", "--port", "0", "--max-batch", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it must not announce a server");
    let help = Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--reward.remote_url http://HOST:5000/get_reward"),
        "{help}"
    );
}
