//! A real SFTP server for the EDI tests: Debian's OpenSSH `sshd` on a free loopback port, with
//! a host key and one authorized client key of its own, serving `internal-sftp`. `tests/run.sh`
//! installs it and sets `ORDERBRIDGE_REQUIRE_SFTP`; elsewhere a test without `sshd` says so and
//! passes over it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SftpServer {
    pub port: u16,
    /// The user it lets in (the one running the test).
    pub user: String,
    /// The client's private key file.
    pub client_key: PathBuf,
    /// The host key's fingerprint, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
}

impl SftpServer {
    /// Starts a server, or `None` (said on stderr) when `sshd` is not installed and the run
    /// does not require it.
    pub async fn start() -> Option<Self> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            assert!(
                std::env::var_os("ORDERBRIDGE_REQUIRE_SFTP").is_none(),
                "/usr/sbin/sshd is missing but ORDERBRIDGE_REQUIRE_SFTP is set (apt-get install openssh-server)"
            );
            eprintln!("skipping the SFTP test: /usr/sbin/sshd is not installed (tests/run.sh installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (host_key, client_key) = (dir.path().join("host_key"), dir.path().join("client_key"));
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let port = super::procs::free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile {pid}\nAllowUsers {user}\nSubsystem sftp internal-sftp\n",
                host = host_key.display(),
                keys = dir.path().join("authorized_keys").display(),
                pid = dir.path().join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // sshd started by root wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let fingerprint = String::from_utf8(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(dir.path().join("host_key.pub"))
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
        let server = Self {
            port,
            user,
            client_key,
            fingerprint,
            child,
            dir,
        };
        let log = server.dir.path().join("sshd.log");
        super::wait_for("sshd to listen", Duration::from_secs(20), || async {
            let listening = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Server listening");
            (listening && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).then_some(())
        })
        .await;
        Some(server)
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SftpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
