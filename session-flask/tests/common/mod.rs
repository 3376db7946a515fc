//! The real Flask for the interop tests: its interpreter from `FLASK_PYTHON` (scripts/test
//! makes the venv), the helper script, and a typed description of Python values.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unreachable_pub)]

pub mod strategy;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;
use session_flask::FlaskValue;
use time::OffsetDateTime;

/// The Python with Flask in it. Missing fails the test, never skips it: a test that passes
/// without ever talking to Flask proves nothing.
pub fn python() -> PathBuf {
    match std::env::var_os("FLASK_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "FLASK_PYTHON is not set: these tests need the real Flask. Run scripts/test, which \
             makes a venv with session-flask/interop/requirements.txt and exports it, or: \
             python3 -m venv /tmp/flask-venv && /tmp/flask-venv/bin/pip install -r \
             session-flask/interop/requirements.txt && export FLASK_PYTHON=/tmp/flask-venv/bin/python"
        ),
    }
}

pub fn helper() -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/interop/flask_helper.py"));
    cmd
}

/// Runs the helper with `args` and parses what it prints.
pub fn run_json(args: &[&str]) -> Value {
    let out = helper().args(args).stderr(Stdio::inherit()).output().expect("run the Flask helper");
    assert!(out.status.success(), "flask_helper.py {args:?} failed: {}", out.status);
    serde_json::from_slice(&out.stdout).expect("the helper prints JSON")
}

/// A long-running helper process: one request line in, one JSON line out.
pub struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = helper()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Flask helper");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Self { child, stdin, stdout }
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the Flask helper");
        assert!(!line.is_empty(), "the Flask helper exited early");
        line.trim_end().to_owned()
    }

    pub fn ask(&mut self, request: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("open");
        assert!(!request.contains('\n'));
        writeln!(stdin, "{request}").and_then(|()| stdin.flush()).expect("write to the Flask helper");
        serde_json::from_str(&self.line()).expect("the helper answers JSON")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Closing stdin ends the helper (a server shuts down); kill it if it does not.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value the helper's typed description stands for.
pub fn from_description(d: &Value) -> FlaskValue {
    if let Some(error) = d.get("error") {
        panic!("Flask failed to read it: {error}");
    }
    let v = &d["v"];
    let text = || v.as_str().expect("text").to_owned();
    match d["t"].as_str().expect("a described value") {
        "none" => FlaskValue::Null,
        "bool" => FlaskValue::Bool(v.as_bool().unwrap()),
        "int" => {
            let t = text();
            t.parse().map_or(FlaskValue::BigInt(t), FlaskValue::Int)
        }
        "float" => FlaskValue::Float(text().parse().expect("Python's repr parses")),
        "str" => FlaskValue::Str(text()),
        "markup" => FlaskValue::Markup(text()),
        "bytes" => FlaskValue::Bytes(hex(&text())),
        "uuid" => FlaskValue::Uuid(hex(&text()).try_into().unwrap()),
        "datetime" => FlaskValue::DateTime(OffsetDateTime::from_unix_timestamp(v.as_i64().unwrap()).unwrap()),
        "list" => FlaskValue::List(v.as_array().unwrap().iter().map(from_description).collect()),
        "tuple" => FlaskValue::Tuple(v.as_array().unwrap().iter().map(from_description).collect()),
        "dict" => FlaskValue::Dict(
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| (k.clone(), from_description(x)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => panic!("unknown description {other}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn dict(pairs: Vec<(&str, FlaskValue)>) -> FlaskValue {
    FlaskValue::Dict(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
