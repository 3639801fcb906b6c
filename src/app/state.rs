//! The state store: one file per [`Durable`] component in `state.directory`
//! (`<name>.state`), written every `state.interval` and at shutdown, read
//! back at start.
//!
//! A file is a header and the component's snapshot:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `SGSTATE1` (the `1` is this file layout) |
//! | 4 | the component's snapshot version, little-endian |
//! | 8 | payload length, little-endian |
//! | 4 | CRC-32 of the payload, little-endian |
//! | n | payload |
//!
//! Writes are atomic: a temporary file is written, flushed to disk and
//! renamed over the old one, then the directory is synced, so a crash
//! leaves the previous snapshot or the new one, never a mix. A file that
//! cannot be used (bad magic, short, checksum mismatch, another version,
//! or refused by the component) is reported, moved to
//! `<directory>/corrupt/`, and the component starts afresh: a bad file
//! never stops StreamGate. The directory is locked (`.lock`), so two
//! processes never write the same state.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::StateConfig;
use crate::pipeline::Shutdown;
use crate::pipeline::durable::{Durable, DurableError};
use crate::telemetry::Telemetry;

const MAGIC: &[u8; 8] = b"SGSTATE1";
const HEADER: usize = 8 + 4 + 8 + 4;

/// Why the state directory cannot be used, or a file not read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state.directory {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state.directory {} is in use by another StreamGate process (it holds {}); give each process its own directory",
        dir.display(),
        dir.join(".lock").display()
    )]
    Locked { dir: PathBuf },
    #[error("state.directory {} is a file, not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: not a StreamGate state file", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: the file is empty (StreamGate writes whole files and renames them into place, so something else emptied or made it)", path.display())]
    Empty { path: PathBuf },
    #[error("{}: file ends early ({len} bytes, header says {expected})", path.display())]
    Truncated {
        path: PathBuf,
        len: usize,
        expected: usize,
    },
    #[error("{}: checksum mismatch (the file is damaged)", path.display())]
    Checksum { path: PathBuf },
    #[error("{}: written by snapshot version {found}, this StreamGate reads version {expected}", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: {source}", path.display())]
    Component { path: PathBuf, source: DurableError },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The open, locked state directory and the components it keeps.
pub struct StateStore {
    dir: PathBuf,
    interval: Duration,
    components: Vec<Arc<dyn Durable>>,
    telemetry: Arc<Telemetry>,
    /// Held for the process' life: the directory's lock.
    _lock: File,
    /// One snapshot at a time (the periodic one and shutdown's).
    writing: parking_lot::Mutex<()>,
}

impl StateStore {
    /// Opens (creating) and locks the directory; `None` when state is off.
    pub fn open(
        config: &StateConfig,
        components: Vec<Arc<dyn Durable>>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Option<Self>, StateError> {
        if !config.enabled() {
            return Ok(None);
        }
        let dir = PathBuf::from(&config.directory);
        if dir.exists() && !dir.is_dir() {
            return Err(StateError::NotADirectory { path: dir });
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StateError::Locked { dir }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        Ok(Some(Self {
            dir,
            interval: config.interval.get(),
            components,
            telemetry,
            _lock: lock,
            writing: parking_lot::Mutex::new(()),
        }))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.state"))
    }

    /// Reads every component's file back. Problems are logged, counted
    /// and the file set aside; they never stop the start.
    pub fn restore_all(&self) {
        for component in &self.components {
            let name = component.state_name();
            let path = self.path(name);
            let started = Instant::now();
            match self.restore_one(component.as_ref(), &path) {
                Ok(None) => tracing::info!(component = name, "no saved state: starting afresh"),
                Ok(Some(restored)) => {
                    self.telemetry.set_state_restored(name, restored.items);
                    tracing::info!(
                        component = name,
                        items = restored.items,
                        discarded = restored.discarded,
                        took_ms = started.elapsed().as_millis() as u64,
                        "state restored"
                    );
                }
                Err(e) => {
                    self.telemetry.record_state_restore_failure(name);
                    let aside = self.set_aside(&path, name);
                    tracing::error!(
                        component = name,
                        error = %e,
                        moved_to = %aside.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                        "saved state cannot be used: set aside, starting afresh"
                    );
                }
            }
        }
    }

    fn restore_one(
        &self,
        component: &dyn Durable,
        path: &Path,
    ) -> Result<Option<crate::pipeline::durable::Restored>, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let payload = check(path, &bytes, component.state_version())?;
        component
            .restore(payload)
            .map(Some)
            .map_err(|source| StateError::Component {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Moves a bad file to `corrupt/<name>.<unix seconds>.state`, or
    /// `….<unix seconds>-<n>.state` when that name is taken (two starts
    /// in one second): a file set aside is never overwritten.
    fn set_aside(&self, path: &Path, name: &str) -> Option<PathBuf> {
        let corrupt = self.dir.join("corrupt");
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let free = (0..1000)
            .map(|n| match n {
                0 => corrupt.join(format!("{name}.{stamp}.state")),
                n => corrupt.join(format!("{name}.{stamp}-{n}.state")),
            })
            .find(|candidate| !candidate.exists());
        let Some(to) = free else {
            tracing::warn!(path = %path.display(), "cannot move the bad state file aside: 1000 set aside this second");
            return None;
        };
        let moved = std::fs::create_dir_all(&corrupt).and_then(|()| std::fs::rename(path, &to));
        match moved {
            Ok(()) => Some(to),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot move the bad state file aside");
                None
            }
        }
    }

    /// Writes every component's snapshot, returning the names of those
    /// that could not be written (blocking: call it off the async
    /// workers). A failure of one is logged and counted; the others are
    /// still written.
    pub fn snapshot_all(&self) -> Vec<&'static str> {
        let _one_at_a_time = self.writing.lock();
        let mut failed = Vec::new();
        let mut buffer = Vec::new();
        for component in &self.components {
            let name = component.state_name();
            let started = Instant::now();
            // What the gauge shows: the state is at least this recent.
            let taken_unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            buffer.clear();
            let written = component
                .snapshot(&mut buffer)
                .map_err(|source| StateError::Component {
                    path: self.path(name),
                    source,
                })
                .and_then(|()| self.write(name, component.state_version(), &buffer));
            match written {
                Ok(()) => {
                    self.telemetry.record_state_snapshot(
                        name,
                        true,
                        buffer.len() as u64,
                        taken_unix,
                    );
                    tracing::debug!(
                        component = name,
                        bytes = buffer.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "state written"
                    );
                }
                Err(e) => {
                    self.telemetry
                        .record_state_snapshot(name, false, 0, taken_unix);
                    tracing::error!(component = name, error = %e, "cannot write state");
                    failed.push(name);
                }
            }
        }
        // Big snapshots leave big buffers: give the memory back.
        drop(buffer);
        failed
    }

    /// Writes one file atomically. A write that fails removes its
    /// temporary file: on a full disk, a half-written snapshot left
    /// behind would take the room the other components' need.
    fn write(&self, name: &str, version: u32, payload: &[u8]) -> Result<(), StateError> {
        let path = self.path(name);
        let temp = self.dir.join(format!(".{name}.state.tmp"));
        let written = (|| {
            let mut file = File::create(&temp).map_err(io(&temp))?;
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&version.to_le_bytes());
            header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            file.write_all(&header).map_err(io(&temp))?;
            file.write_all(payload).map_err(io(&temp))?;
            file.sync_all().map_err(io(&temp))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        std::fs::rename(&temp, &path).map_err(io(&path))?;
        // The rename itself must reach the disk.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    /// Writes snapshots every `state.interval` until `shutdown` (the last
    /// one is written by [`StateStore::snapshot_all`] once ingest has
    /// drained).
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {
                    let store = self.clone();
                    if tokio::task::spawn_blocking(move || store.snapshot_all()).await.is_err() {
                        tracing::error!("state snapshot task panicked");
                    }
                }
            }
        }
    }
}

/// The payload of a state file, after checking its header.
fn check<'a>(path: &Path, bytes: &'a [u8], version: u32) -> Result<&'a [u8], StateError> {
    let truncated = |expected| StateError::Truncated {
        path: path.to_path_buf(),
        len: bytes.len(),
        expected,
    };
    if bytes.is_empty() {
        return Err(StateError::Empty {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() < HEADER {
        return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
            truncated(HEADER)
        } else {
            StateError::BadMagic {
                path: path.to_path_buf(),
            }
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(StateError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let found = word(8);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len);
    let crc = word(20);
    let expected = (HEADER as u64).saturating_add(len);
    if (bytes.len() as u64) < expected {
        return Err(truncated(expected.min(usize::MAX as u64) as usize));
    }
    let payload = &bytes[HEADER..HEADER + len as usize];
    if crc32fast::hash(payload) != crc {
        return Err(StateError::Checksum {
            path: path.to_path_buf(),
        });
    }
    if found != version {
        return Err(StateError::Version {
            path: path.to_path_buf(),
            found,
            expected: version,
        });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests;
