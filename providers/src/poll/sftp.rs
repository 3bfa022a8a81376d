//! An EDI drop on a partner's SFTP server (`[poll.edi.sftp]`).
//!
//! Each round, before the local drop (`dir`) is read, the server's `remote_dir` is brought
//! into it. A file is fetched once it is settled: not a dot-file or `.part`/`.filepart`/`.tmp`,
//! and listed with the same size and modification time for `settle_secs` of our own clock
//! (the server's may be off). It is downloaded as a dot-file, checked against the size the
//! server listed, synced, renamed into place and the directory synced, so a round never reads
//! half a file and a crash cannot lose it; only then is it moved to `remote_done_dir` on the
//! server, or removed when there is none, and not if the partner replaced it since it was
//! listed (a file reusing its name stays, to be fetched). A crash in between fetches it
//! again, which is harmless: files are claimed by their content. A file whose server copy
//! cannot be moved or removed (a read-only account) is not fetched again while it stays as
//! it was; its move is tried each round. A name already taken in `dir` gets a `.<n>` suffix
//! rather than overwriting a file not yet read. Directories are passed over; links are
//! followed; anything else is left with a warning.
//!
//! With `remote_ack_dir`, the 997s written to `ack_dir` go back to the partner: each is
//! uploaded as `.<name>.part`, renamed into place on the server, and moved locally to
//! `ack_dir/sent/`; one whose name is on the server already (sent before a crash) is not
//! sent twice.
//!
//! The server's host key must match the configured fingerprint (`SHA256:…`, as
//! `ssh-keygen -l` prints it): nothing is trusted on first use. Host key types are asked for
//! in OpenSSH's order (Ed25519 first), so the key checked is the one an operator's `ssh`
//! shows. Authentication is by a private key file (OpenSSH or PEM, with an optional
//! passphrase) or a password. libssh2 (the `ssh2` crate) does the protocol: the widely
//! deployed C implementation, kept by the curl project, with host-key hashes, key files and
//! SFTP renames; it blocks, so each sync runs on a blocking thread, bounded by `timeout_secs`
//! for every network operation.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use orderbridge_runtime::Secret;
use serde::Deserialize;

use super::edi::in_progress;
use super::{EdiDrop, PollMetrics};

/// `[poll.edi.sftp]`: where a partner's drop is on its SFTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpDrop {
    /// The server.
    pub host: String,
    /// Its port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Who OrderBridge logs in as.
    pub username: String,
    /// A private key file (OpenSSH or PEM format).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The key file's passphrase, if it has one.
    #[serde(default)]
    pub passphrase: Option<Secret>,
    /// A password, for a server that takes one instead of a key.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The server's host key, `SHA256:<base64>` as `ssh-keygen -lf <key>.pub` prints it.
    pub host_key_fingerprint: String,
    /// The directory the partner puts its 850 files in.
    pub remote_dir: String,
    /// Where a downloaded file is moved on the server; unset: it is removed.
    #[serde(default)]
    pub remote_done_dir: Option<String>,
    /// Where the 997s of `ack_dir` are uploaded; unset: they stay local.
    #[serde(default)]
    pub remote_ack_dir: Option<String>,
    /// Bound on connecting and on each operation, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_port() -> u16 {
    22
}

fn default_timeout() -> u64 {
    30
}

impl SftpDrop {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn validate(&self, drop: &EdiDrop) -> Result<(), String> {
        let at = |what: &str| format!("poll.edi ({}).sftp: {what}", drop.partner);
        if self.private_key_file.is_some() == self.password.is_some() {
            return Err(at("give one of private_key_file and password"));
        }
        if !self.host_key_fingerprint.starts_with("SHA256:") {
            return Err(at(
                "host_key_fingerprint must be SHA256:<base64>, as `ssh-keygen -lf <host key>.pub` prints it",
            ));
        }
        if self.remote_dir.trim().is_empty() {
            return Err(at("remote_dir is empty"));
        }
        let same = |other: &Option<String>| {
            other
                .as_deref()
                .is_some_and(|o| o.trim_end_matches('/') == self.remote_dir.trim_end_matches('/'))
        };
        if same(&self.remote_done_dir) || same(&self.remote_ack_dir) {
            return Err(at(
                "remote_done_dir and remote_ack_dir must not be remote_dir: their files would be read again as the partner's",
            ));
        }
        if self.remote_ack_dir.is_some() && drop.ack_dir.is_none() {
            return Err(at(
                "remote_ack_dir needs ack_dir (where the 997s are written first)",
            ));
        }
        Ok(())
    }
}

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// Files downloaded into the local drop.
    pub downloaded: usize,
    /// Files left on the server for later (being uploaded, not yet settled, or changed while
    /// read).
    pub unsettled: usize,
    /// Files fetched before whose server copy could not be moved or removed: not fetched
    /// again while unchanged.
    pub kept: usize,
    /// Entries that are neither files nor directories (left, with a warning).
    pub skipped: usize,
    /// Files that failed (logged; tried again next round).
    pub failed: usize,
    /// 997s uploaded.
    pub acks_sent: usize,
}

/// What the fetcher remembers of the server between rounds. In memory: a restarted poll
/// waits one settle period again, and may fetch a file a second time, which its content
/// hash makes harmless.
#[derive(Debug, Default)]
pub struct Seen {
    /// Each remote file as last listed, and since when (our clock) it has been so.
    listed: HashMap<String, Listed>,
    /// Files downloaded whose server copy could not be moved or removed, as they were.
    fetched: HashMap<String, (Option<u64>, Option<u64>)>,
    /// Whether the downloads a crash left half done were cleared (once a process).
    cleaned: bool,
}

#[derive(Debug)]
struct Listed {
    size: Option<u64>,
    mtime: Option<u64>,
    since: Instant,
}

impl Seen {
    /// Whether `name`, listed with this size and modification time, has been so for
    /// `settle` of our own clock (the server's may be off).
    fn settled(
        &mut self,
        name: &str,
        size: Option<u64>,
        mtime: Option<u64>,
        settle: Duration,
    ) -> bool {
        let now = Instant::now();
        let listed = self.listed.entry(name.to_owned()).or_insert(Listed {
            size,
            mtime,
            since: now,
        });
        if listed.size != size || listed.mtime != mtime {
            *listed = Listed {
                size,
                mtime,
                since: now,
            };
        }
        now.duration_since(listed.since) >= settle
    }
}

/// Why a sync could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// Connecting, the handshake or logging in failed.
    #[error("{host}: {reason}")]
    Connect {
        /// `host:port`.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The server is not the one configured.
    #[error("{host}: its {kind} host key is {seen}, not the configured {expected}; refusing (a changed key, another server, or the fingerprint of another of its keys)")]
    HostKey {
        /// `host:port`.
        host: String,
        /// The key's type, as negotiated.
        kind: String,
        /// The fingerprint the server showed.
        seen: String,
        /// The configured fingerprint.
        expected: String,
    },
    /// The remote drop could not be listed.
    #[error("{host}: cannot list {dir}: {reason}")]
    List {
        /// `host:port`.
        host: String,
        /// The remote directory.
        dir: String,
        /// What failed.
        reason: String,
    },
    /// The blocking thread failed.
    #[error("the SFTP sync stopped: {0}")]
    Thread(String),
}

/// Brings the server's drop into `drop.dir` and sends the 997s back; see the module docs.
/// `seen` carries what the server showed between rounds.
///
/// # Errors
/// [`SftpError`] when the server cannot be reached or listed; a single file's failure is
/// logged and counted instead.
pub async fn sync(drop: &EdiDrop, sftp: &SftpDrop, seen: &mut Seen) -> Result<Synced, SftpError> {
    let (drop, sftp, mut taken) = (drop.clone(), sftp.clone(), std::mem::take(seen));
    let (back, result) = tokio::task::spawn_blocking(move || {
        let result = sync_blocking(&drop, &sftp, &mut taken);
        (taken, result)
    })
    .await
    .map_err(|err| SftpError::Thread(err.to_string()))?;
    *seen = back;
    result
}

/// One round's sync, counted (`orderbridge_poll_edi_files_total`) and logged; a server that
/// cannot be reached fails the sync (`orderbridge_poll_rounds_total{source="edi-sftp"}`) and
/// leaves the round to the files already local.
pub async fn sync_round(drop: &EdiDrop, sftp: &SftpDrop, seen: &mut Seen, metrics: &PollMetrics) {
    match sync(drop, sftp, seen).await {
        Ok(synced) => {
            for (outcome, count) in [
                ("downloaded", synced.downloaded),
                ("ack_sent", synced.acks_sent),
                ("sftp_failed", synced.failed),
                ("sftp_skipped", synced.skipped),
                ("sftp_kept", synced.kept),
            ] {
                metrics
                    .edi_files
                    .with_label_values(&[outcome])
                    .inc_by(count as u64);
            }
            if synced.downloaded + synced.acks_sent + synced.failed + synced.skipped + synced.kept
                > 0
            {
                tracing::info!(partner = %drop.partner, ?synced, "SFTP drop synced");
            }
        }
        Err(err) => {
            metrics
                .rounds
                .with_label_values(&["edi-sftp", "failed"])
                .inc();
            tracing::error!(partner = %drop.partner, error = %err, "cannot sync the SFTP drop; trying again next round");
        }
    }
}

/// `SHA256:<base64 without padding>` of a host key hash, as OpenSSH prints it.
fn fingerprint(hash: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

/// Host key types in OpenSSH's own order of preference: the key a `ssh-keyscan` or first
/// login shows an operator is the one checked.
const HOST_KEY_PREFERENCE: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
     ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

fn connect(sftp: &SftpDrop) -> Result<ssh2::Session, SftpError> {
    let host = format!("{}:{}", sftp.host, sftp.port);
    let failed = |reason: String| SftpError::Connect {
        host: host.clone(),
        reason,
    };
    let timeout = Duration::from_secs(sftp.timeout_secs.max(1));
    let address = (sftp.host.as_str(), sftp.port)
        .to_socket_addrs()
        .map_err(|err| failed(format!("cannot resolve: {err}")))?
        .next()
        .ok_or_else(|| failed("resolves to no address".into()))?;
    let tcp = TcpStream::connect_timeout(&address, timeout)
        .map_err(|err| failed(format!("cannot connect: {err}")))?;
    let mut session = ssh2::Session::new().map_err(|err| failed(err.to_string()))?;
    session.set_tcp_stream(tcp);
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    if let Err(err) = session.method_pref(ssh2::MethodType::HostKey, HOST_KEY_PREFERENCE) {
        tracing::warn!(%host, error = %err, "cannot state the host key preference; taking libssh2's");
    }
    session
        .handshake()
        .map_err(|err| failed(format!("SSH handshake: {err}")))?;
    let seen = session
        .host_key_hash(ssh2::HashType::Sha256)
        .map(fingerprint)
        .unwrap_or_default();
    // Base64 fingerprints are case-sensitive; trailing '=' padding is not part of OpenSSH's.
    let expected = sftp.host_key_fingerprint.trim().trim_end_matches('=');
    if seen != expected {
        let kind = session
            .host_key()
            .map(|(_, kind)| format!("{kind:?}"))
            .unwrap_or_else(|| "unknown".into());
        return Err(SftpError::HostKey {
            host,
            kind,
            seen,
            expected: expected.to_owned(),
        });
    }
    let login = match (&sftp.private_key_file, &sftp.password) {
        (Some(key), _) => session.userauth_pubkey_file(
            &sftp.username,
            None,
            key,
            sftp.passphrase.as_ref().map(Secret::expose),
        ),
        (None, Some(password)) => session.userauth_password(&sftp.username, password.expose()),
        (None, None) => return Err(failed("no credentials configured".into())),
    };
    login.map_err(|err| failed(format!("login as {} refused: {err}", sftp.username)))?;
    Ok(session)
}

/// The name of a download in progress in the local drop (a dot-file: never read).
fn partial_name(name: &str) -> String {
    format!(".{name}.sftp-part")
}

/// Removes downloads a crash left half done (a download that fails removes its own): theirs
/// are still on the server, which only lets a file go once its copy here is whole and
/// durable.
fn clean_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".sftp-part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn sync_blocking(drop: &EdiDrop, sftp: &SftpDrop, seen: &mut Seen) -> Result<Synced, SftpError> {
    let host = format!("{}:{}", sftp.host, sftp.port);
    let session = connect(sftp)?;
    let channel = session.sftp().map_err(|err| SftpError::Connect {
        host: host.clone(),
        reason: format!("SFTP subsystem: {err}"),
    })?;
    if !seen.cleaned {
        clean_partials(&drop.dir);
        seen.cleaned = true;
    }
    let remote = Path::new(&sftp.remote_dir);
    let mut entries = channel.readdir(remote).map_err(|err| SftpError::List {
        host: host.clone(),
        dir: sftp.remote_dir.clone(),
        reason: err.to_string(),
    })?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let settle = Duration::from_secs(drop.settle_secs);
    let mut synced = Synced::default();
    let mut listed = std::collections::HashSet::new();
    for (path, stat) in entries {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if stat.is_dir() {
            continue; // an archive or outbox beside the files: not the partner's orders
        }
        let stat = if stat.is_file() {
            stat
        } else {
            // A link, or a server that omits the type: what it points at.
            match channel.stat(&path) {
                Ok(target) if target.is_file() => target,
                Ok(_) | Err(_) => {
                    tracing::warn!(partner = %drop.partner, file = %name, "neither a file nor a directory on the SFTP drop; leaving it");
                    synced.skipped += 1;
                    continue;
                }
            }
        };
        listed.insert(name.clone());
        if in_progress(&name) || !seen.settled(&name, stat.size, stat.mtime, settle) {
            synced.unsettled += 1;
            continue;
        }
        let listing = (stat.size, stat.mtime);
        if seen.fetched.get(&name) == Some(&listing) {
            // Downloaded before; only its move or removal on the server failed.
            match let_go(&channel, sftp, &path, &name, listing) {
                Ok(()) => {
                    seen.fetched.remove(&name);
                }
                Err(reason) => {
                    tracing::warn!(partner = %drop.partner, file = %name, %reason, "fetched before; still cannot move or remove it on the server");
                    synced.kept += 1;
                }
            }
            continue;
        }
        match fetch(&channel, drop, &path, &name, stat.size) {
            Ok(Some(target)) => {
                synced.downloaded += 1;
                if let Err(reason) = let_go(&channel, sftp, &path, &name, listing) {
                    // Here and durable, and claimed by content: it is not fetched again while
                    // it stays as it is; its move is tried each round.
                    tracing::warn!(partner = %drop.partner, file = %name, local = %target.display(), %reason, "downloaded, but not moved or removed on the server");
                    seen.fetched.insert(name.clone(), listing);
                }
            }
            Ok(None) => synced.unsettled += 1,
            Err(reason) => {
                tracing::error!(partner = %drop.partner, file = %name, %reason, "SFTP file not fetched; trying it again next round");
                synced.failed += 1;
            }
        }
    }
    seen.listed.retain(|name, _| listed.contains(name));
    seen.fetched.retain(|name, _| listed.contains(name));
    if let (Some(remote_ack), Some(ack_dir)) = (&sftp.remote_ack_dir, &drop.ack_dir) {
        match send_acks(&channel, Path::new(remote_ack), ack_dir) {
            Ok((sent, failed)) => {
                synced.acks_sent += sent;
                synced.failed += failed;
            }
            Err(reason) => {
                tracing::error!(partner = %drop.partner, %reason, "997s not sent; trying again next round");
                synced.failed += 1;
            }
        }
    }
    Ok(synced)
}

/// A name in `dir` not taken yet: `name`, else `name.1`, `name.2`, ….
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut candidate = dir.join(name);
    let mut n = 1;
    while candidate.exists() {
        candidate = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    candidate
}

/// Downloads one file into the local drop: whole (its size as listed), synced, renamed into
/// place and the directory synced, so it survives a crash before the server lets it go.
/// `Ok(None)`: it changed while read, and is left for the next round.
fn fetch(
    channel: &ssh2::Sftp,
    drop: &EdiDrop,
    path: &Path,
    name: &str,
    listed_size: Option<u64>,
) -> Result<Option<PathBuf>, String> {
    let mut bytes = Vec::new();
    {
        let mut source = channel
            .open(path)
            .map_err(|err| format!("cannot open: {err}"))?;
        source
            .read_to_end(&mut bytes)
            .map_err(|err| format!("cannot read: {err}"))?;
    }
    if listed_size.is_some_and(|size| size != bytes.len() as u64) {
        return Ok(None);
    }
    let partial = drop.dir.join(partial_name(name));
    let write = || -> std::io::Result<PathBuf> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&bytes)?;
        // Settled already (on the server): the local round reads it now, not after another
        // settle period.
        let settled = SystemTime::now()
            .checked_sub(Duration::from_secs(drop.settle_secs.saturating_add(1)))
            .unwrap_or(UNIX_EPOCH);
        file.set_modified(settled)?;
        file.sync_all()?;
        let target = free_name(&drop.dir, name);
        std::fs::rename(&partial, &target)?;
        std::fs::File::open(&drop.dir)?.sync_all()?;
        Ok(target)
    };
    write().map(Some).map_err(|err| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot write into {}: {err}", drop.dir.display())
    })
}

/// Moves a fetched file to `remote_done_dir` on the server, or removes it; unless the partner
/// replaced it since it was listed (a file reusing its name), which stays to be fetched.
fn let_go(
    channel: &ssh2::Sftp,
    sftp: &SftpDrop,
    path: &Path,
    name: &str,
    listing: (Option<u64>, Option<u64>),
) -> Result<(), String> {
    let now = channel
        .stat(path)
        .map_err(|err| format!("cannot stat it again: {err}"))?;
    if (now.size, now.mtime) != listing {
        return Err(
            "it changed since it was read (a new file under its name); left to be fetched".into(),
        );
    }
    match &sftp.remote_done_dir {
        Some(done) => {
            // SFTP v3 servers (OpenSSH's among them) refuse to rename over a file: an
            // archived file of the same name gets the time as a suffix instead.
            let done = Path::new(done);
            channel
                .rename(path, &done.join(name), None)
                .or_else(|_| {
                    let stamp = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    channel.rename(path, &done.join(format!("{name}.{stamp}")), None)
                })
                .map_err(|err| format!("cannot move it to {}: {err}", done.display()))
        }
        None => channel
            .unlink(path)
            .map_err(|err| format!("cannot remove it: {err}")),
    }
}

/// Uploads each 997 of `ack_dir` and moves it to `ack_dir/sent`. Returns (sent, failed).
fn send_acks(
    channel: &ssh2::Sftp,
    remote: &Path,
    ack_dir: &Path,
) -> Result<(usize, usize), String> {
    let sent_dir = ack_dir.join("sent");
    std::fs::create_dir_all(&sent_dir)
        .map_err(|err| format!("cannot make {}: {err}", sent_dir.display()))?;
    let mut names: Vec<String> = std::fs::read_dir(ack_dir)
        .map_err(|err| format!("cannot read {}: {err}", ack_dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !in_progress(name))
        .collect();
    names.sort();
    let (mut sent, mut failed) = (0, 0);
    for name in names {
        let local = ack_dir.join(&name);
        let target = remote.join(&name);
        let upload = || -> Result<(), String> {
            // A 997 of this name is there already (sent before a crash, or written again
            // for a file read again): the partner has its acknowledgement.
            if channel.stat(&target).is_err() {
                let bytes = std::fs::read(&local).map_err(|err| format!("cannot read: {err}"))?;
                let partial = remote.join(format!(".{name}.part"));
                let mut file = channel
                    .create(&partial)
                    .map_err(|err| format!("cannot create {}: {err}", partial.display()))?;
                file.write_all(&bytes)
                    .map_err(|err| format!("cannot write {}: {err}", partial.display()))?;
                file.close()
                    .map_err(|err| format!("cannot close {}: {err}", partial.display()))?;
                channel
                    .rename(&partial, &target, None)
                    .map_err(|err| format!("cannot rename into place: {err}"))?;
            }
            std::fs::rename(&local, sent_dir.join(&name))
                .map_err(|err| format!("sent, but cannot move it to sent/: {err}"))
        };
        match upload() {
            Ok(()) => sent += 1,
            Err(reason) => {
                tracing::error!(file = %name, %reason, "997 not sent; trying again next round");
                failed += 1;
            }
        }
    }
    Ok((sent, failed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn drop_with(sftp: &SftpDrop, ack_dir: Option<&str>) -> EdiDrop {
        EdiDrop {
            partner: "acme".into(),
            dir: PathBuf::from("/var/lib/orderbridge/edi/acme"),
            ack_dir: ack_dir.map(PathBuf::from),
            done_dir: None,
            settle_secs: 5,
            sftp: Some(sftp.clone()),
        }
    }

    fn sftp() -> SftpDrop {
        SftpDrop {
            host: "sftp.acme.example".into(),
            port: 22,
            username: "orderbridge".into(),
            private_key_file: Some(PathBuf::from("/run/secrets/acme-key")),
            passphrase: None,
            password: None,
            host_key_fingerprint: "SHA256:RfIL/l0KvKiEeDULzEV+nsCxF5/1GgjpRpo+OjAFCyw".into(),
            remote_dir: "/outbound/850".into(),
            remote_done_dir: Some("/outbound/850/archive".into()),
            remote_ack_dir: None,
            timeout_secs: 30,
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let good = sftp();
        assert_eq!(good.validate(&drop_with(&good, None)), Ok(()));
        let mut both = sftp();
        both.password = Some(Secret::new("pw"));
        assert!(both.validate(&drop_with(&both, None)).is_err());
        let mut md5 = sftp();
        md5.host_key_fingerprint = "MD5:aa:bb".into();
        assert!(md5.validate(&drop_with(&md5, None)).is_err());
        let mut loop_back = sftp();
        loop_back.remote_done_dir = Some("/outbound/850/".into());
        assert!(loop_back.validate(&drop_with(&loop_back, None)).is_err());
        let mut acks = sftp();
        acks.remote_ack_dir = Some("/inbound/997".into());
        assert!(acks.validate(&drop_with(&acks, None)).is_err());
        assert_eq!(acks.validate(&drop_with(&acks, Some("/acks"))), Ok(()));
    }

    #[test]
    fn fingerprints_are_printed_as_openssh_does() {
        // SHA-256 of nothing, as `ssh-keygen -l` would print a key hashing to it.
        let hash: [u8; 32] = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        assert_eq!(
            fingerprint(&hash),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn a_taken_name_gets_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "po.x12"), dir.path().join("po.x12"));
        std::fs::write(dir.path().join("po.x12"), b"a").unwrap();
        assert_eq!(free_name(dir.path(), "po.x12"), dir.path().join("po.x12.1"));
    }
}
