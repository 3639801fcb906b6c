//! The state store on disk: round trips, atomic replacement, and every
//! kind of bad file set aside without stopping anything.

use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::config::types::HumanDuration;
use crate::pipeline::durable::Restored;

/// A component whose state is a byte string.
struct Bytes {
    name: &'static str,
    version: u32,
    state: Mutex<Vec<u8>>,
    /// What `restore` was given (None: never called).
    restored: Mutex<Option<Vec<u8>>>,
    refuse: bool,
}

impl Bytes {
    fn new(name: &'static str, version: u32, state: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            name,
            version,
            state: Mutex::new(state.to_vec()),
            restored: Mutex::new(None),
            refuse: false,
        })
    }
}

impl Durable for Bytes {
    fn state_name(&self) -> &'static str {
        self.name
    }
    fn state_version(&self) -> u32 {
        self.version
    }
    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), DurableError> {
        out.extend_from_slice(&self.state.lock());
        Ok(())
    }
    fn restore(&self, snapshot: &[u8]) -> Result<Restored, DurableError> {
        if self.refuse {
            return Err(DurableError::decode("not mine"));
        }
        *self.restored.lock() = Some(snapshot.to_vec());
        Ok(Restored {
            items: snapshot.len() as u64,
            discarded: 0,
        })
    }
}

fn config(dir: &Path) -> StateConfig {
    StateConfig {
        directory: dir.display().to_string(),
        interval: HumanDuration::secs(60),
    }
}

fn open(dir: &Path, components: Vec<Arc<dyn Durable>>) -> (StateStore, Arc<Telemetry>) {
    let telemetry = Arc::new(Telemetry::new());
    let store = StateStore::open(&config(dir), components, telemetry.clone())
        .expect("opens")
        .expect("enabled");
    (store, telemetry)
}

fn corrupt_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("corrupt"))
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn state_round_trips_and_replaces_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Bytes::new("alpha", 3, b"first state");
    {
        let (store, telemetry) = open(dir.path(), vec![a.clone()]);
        store.snapshot_all();
        *a.state.lock() = b"second".to_vec();
        store.snapshot_all();
        let stats = telemetry.state_stats();
        assert_eq!(stats[0].0, "alpha");
        assert_eq!(stats[0].1.snapshots_ok, 2);
        assert_eq!(stats[0].1.bytes, 6);
    }
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert_eq!(files, vec!["alpha.state".to_string()], "no temporary left");

    let b = Bytes::new("alpha", 3, b"");
    let (store, telemetry) = open(dir.path(), vec![b.clone()]);
    store.restore_all();
    assert_eq!(b.restored.lock().as_deref(), Some(&b"second"[..]));
    assert_eq!(telemetry.state_stats()[0].1.restored, 6);
    assert!(corrupt_files(dir.path()).is_empty());
}

#[test]
fn a_missing_file_means_a_fresh_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Bytes::new("alpha", 1, b"");
    let (store, _) = open(dir.path(), vec![a.clone()]);
    store.restore_all();
    assert!(a.restored.lock().is_none());
}

#[test]
fn damaged_foreign_and_other_version_files_are_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = ["flipped", "short", "foreign", "newer", "refused", "empty"];
    {
        let components: Vec<Arc<dyn Durable>> = names
            .iter()
            .map(|n| Bytes::new(n, 1, b"some state bytes") as Arc<dyn Durable>)
            .collect();
        let (store, _) = open(dir.path(), components);
        store.snapshot_all();
    }
    let path = |n: &str| dir.path().join(format!("{n}.state"));
    let mut flipped = std::fs::read(path("flipped")).expect("read");
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(path("flipped"), flipped).expect("write");
    let short = std::fs::read(path("short")).expect("read");
    std::fs::write(path("short"), &short[..short.len() - 3]).expect("write");
    std::fs::write(path("empty"), b"").expect("write");
    std::fs::write(path("foreign"), b"{\"json\": true}").expect("write");

    let mut components: Vec<Arc<dyn Durable>> = Vec::new();
    let mut kept = Vec::new();
    for n in names {
        let version = if n == "newer" { 2 } else { 1 };
        let c = Arc::new(Bytes {
            name: n,
            version,
            state: Mutex::new(Vec::new()),
            restored: Mutex::new(None),
            refuse: n == "refused",
        });
        kept.push(c.clone());
        components.push(c);
    }
    let (store, telemetry) = open(dir.path(), components);
    store.restore_all();
    for c in &kept {
        assert!(c.restored.lock().is_none(), "{} must start afresh", c.name);
        assert!(!path(c.name).exists(), "{} moved away", c.name);
    }
    let aside = corrupt_files(dir.path());
    assert_eq!(aside.len(), names.len(), "{aside:?}");
    for n in names {
        assert!(
            aside.iter().any(|f| f.starts_with(&format!("{n}."))),
            "{aside:?}"
        );
    }
    assert!(
        telemetry
            .state_stats()
            .iter()
            .all(|(_, s)| s.restore_failures == 1)
    );
    // And the next snapshot writes good files again.
    store.snapshot_all();
    assert!(path("flipped").exists());
}

#[test]
fn the_header_check_names_each_problem() {
    let p = Path::new("x.state");
    let mut good = Vec::new();
    good.extend_from_slice(MAGIC);
    good.extend_from_slice(&7u32.to_le_bytes());
    good.extend_from_slice(&3u64.to_le_bytes());
    good.extend_from_slice(&crc32fast::hash(b"abc").to_le_bytes());
    good.extend_from_slice(b"abc");
    assert_eq!(check(p, &good, 7).expect("good"), b"abc");
    assert!(matches!(
        check(p, &good, 8),
        Err(StateError::Version { found: 7, .. })
    ));
    assert!(matches!(
        check(p, &good[..10], 7),
        Err(StateError::Truncated { .. })
    ));
    assert!(matches!(
        check(p, &good[..good.len() - 1], 7),
        Err(StateError::Truncated { .. })
    ));
    assert!(matches!(
        check(p, b"nope", 7),
        Err(StateError::BadMagic { .. })
    ));
    let mut huge = good.clone();
    huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        check(p, &huge, 7),
        Err(StateError::Truncated { .. })
    ));
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_first, _) = open(dir.path(), Vec::new());
    let second = StateStore::open(&config(dir.path()), Vec::new(), Arc::new(Telemetry::new()));
    let error = second.err().expect("locked");
    assert!(matches!(error, StateError::Locked { .. }), "{error}");
    assert!(
        error.to_string().contains("another StreamGate process"),
        "{error}"
    );
    let off = StateConfig {
        directory: String::new(),
        interval: HumanDuration::secs(60),
    };
    assert!(
        StateStore::open(&off, Vec::new(), Arc::new(Telemetry::new()))
            .expect("off")
            .is_none()
    );
}

/// A component that takes a while to snapshot, noting when it was asked.
struct Slow {
    asked_unix: Mutex<f64>,
}

impl Durable for Slow {
    fn state_name(&self) -> &'static str {
        "slow"
    }
    fn state_version(&self) -> u32 {
        1
    }
    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), DurableError> {
        *self.asked_unix.lock() = unix_now();
        std::thread::sleep(Duration::from_millis(200));
        out.extend_from_slice(b"state");
        Ok(())
    }
    fn restore(&self, _: &[u8]) -> Result<Restored, DurableError> {
        Ok(Restored::default())
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The last-snapshot time is when the snapshot began, not when its file
/// was in place: what it holds is at least that recent, so `now − time`
/// bounds what a crash would lose however long the writing took.
#[test]
fn the_snapshot_time_is_when_the_state_was_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = Arc::new(Slow {
        asked_unix: Mutex::new(0.0),
    });
    let (store, telemetry) = open(dir.path(), vec![slow.clone()]);
    store.snapshot_all();
    let done = unix_now();
    let taken = telemetry.state_stats()[0].1.last_taken_unix;
    let asked = *slow.asked_unix.lock();
    assert!(
        taken > 0.0 && taken <= asked,
        "taken {taken}, asked {asked}"
    );
    assert!(done - taken >= 0.2, "taken {taken}, done {done}");
}

/// Two bad files of one component set aside within one second keep both:
/// the second takes a numbered name.
#[test]
fn files_set_aside_in_one_second_keep_their_own_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    for garbage in [&b"first garbage"[..], &b"second garbage"[..]] {
        std::fs::write(dir.path().join("alpha.state"), garbage).expect("write");
        let a = Bytes::new("alpha", 1, b"");
        let (store, _) = open(dir.path(), vec![a]);
        store.restore_all();
    }
    let aside = corrupt_files(dir.path());
    assert_eq!(aside.len(), 2, "{aside:?}");
    let mut contents: Vec<Vec<u8>> = aside
        .iter()
        .map(|f| std::fs::read(dir.path().join("corrupt").join(f)).expect("read"))
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [b"first garbage".to_vec(), b"second garbage".to_vec()]
    );
}
