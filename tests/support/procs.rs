//! The `orderbridge` binary as real processes: started with an environment of their own, their
//! output kept in a log file each, killed with SIGKILL and started again as an operator (or a
//! supervisor) would, and every one of them stopped when the test ends. A test that fails
//! prints the logs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A port that was free a moment ago: bound, read and released; the process binds it next.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether `http://127.0.0.1:{port}/readyz` answers 2xx, asked the way compose and the chart
/// ask (`orderbridge probe`).
pub fn ready(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_orderbridge"))
        .args(["probe", &format!("http://127.0.0.1:{port}/readyz")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Proc {
    name: String,
    /// The program: `orderbridge` unless said otherwise.
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// How often this process was started.
    starts: u32,
}

/// Processes of one test; all killed when it is dropped.
pub struct Procs {
    procs: Vec<Proc>,
    logs: PathBuf,
}

impl Procs {
    /// No processes yet; their logs go to `logs/<name>.log`.
    pub fn new(logs: &Path) -> Self {
        Self {
            procs: Vec::new(),
            logs: logs.to_owned(),
        }
    }

    /// Starts `orderbridge <args>` as `name`, with only `env` in its environment (and `PATH`).
    pub fn spawn(&mut self, name: &str, args: &[&str], env: &[(String, String)]) {
        self.spawn_program(name, env!("CARGO_BIN_EXE_orderbridge"), args, env);
    }

    /// Starts `program <args>` (found on `PATH`) as `name`, in the logs directory.
    pub fn spawn_program(
        &mut self,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(String, String)],
    ) {
        let mut proc = Proc {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env.to_vec(),
            child: None,
            starts: 0,
        };
        self.start(&mut proc);
        self.procs.push(proc);
    }

    fn start(&self, proc: &mut Proc) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(&proc.name))
            .unwrap();
        let child = Command::new(&proc.program)
            .current_dir(&self.logs)
            .args(&proc.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(proc.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        proc.child = Some(child);
        proc.starts += 1;
    }

    fn find(&mut self, name: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// SIGKILLs `name` (no shutdown of any kind, as a crash or an OOM kill) and reaps it.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.find(name).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `name` again with its arguments and environment; its log goes on.
    pub fn restart(&mut self, name: &str) {
        self.kill(name);
        let index = self
            .procs
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        let mut proc = self.procs.swap_remove(index);
        self.start(&mut proc);
        self.procs.push(proc);
    }

    /// `Some(status)` when `name` exited by itself (it was not killed by the test).
    pub fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.find(name)
            .child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// The names of the processes that exited by themselves.
    pub fn crashed(&mut self) -> Vec<String> {
        let names: Vec<String> = self.procs.iter().map(|p| p.name.clone()).collect();
        names
            .into_iter()
            .filter(|name| self.exited(name).is_some())
            .collect()
    }

    /// How often `name` was started.
    pub fn starts(&mut self, name: &str) -> u32 {
        self.find(name).starts
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Everything `name` wrote so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for proc in &mut self.procs {
            if let Some(mut child) = proc.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for proc in &self.procs {
                let log = self.log(&proc.name);
                // The end of each log is what explains a failure; the whole of a long run's
                // logs would bury it.
                let tail: Vec<&str> = log.lines().rev().take(80).collect();
                eprintln!("--- {} (last {} lines) ---", proc.name, tail.len());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}
