//! The API node's local usage log.
//!
//! A record is appended with one `write(2)` to the open segment before the
//! response is sent, so it survives the process being killed; a background
//! thread fsyncs the segment every `fsync_interval` (so an OS crash loses at
//! most that window) and closes it after `segment_max_age` or
//! `segment_max_bytes`. Only that write happens under the log's lock: fsyncs
//! and closing a full segment run outside it (measured against a writer
//! thread with group commit in docs/benchmarks.md, 2026-12-05). Closed segments move from `open/` to `ready/`, where
//! the shipper picks them up in name (= time) order. Segments left in `open/`
//! by a crash are closed at the next start. Bounded by the disk: a failed
//! write is counted and logged, never silent.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use resizer_core::ids::random_bytes;
use resizer_core::time::now_unix_ms;

use crate::record::UsageRecord;

/// Settings of the usage log.
#[derive(Debug, Clone)]
pub struct UsageLogConfig {
    /// Directory holding `open/` and `ready/`.
    pub dir: PathBuf,
    /// Longest time an appended record waits for fsync.
    pub fsync_interval: Duration,
    /// A segment is closed after this many bytes...
    pub segment_max_bytes: u64,
    /// ...or this long after it was opened.
    pub segment_max_age: Duration,
    /// Below this much free space on the log's filesystem the log reports
    /// itself unwritable (an API node turns not-ready) before appends fail, and
    /// after a failure it must be back before the log reports writable again.
    pub min_free_bytes: u64,
}

impl UsageLogConfig {
    /// Defaults: fsync every 100 ms, segments of at most 8 MiB or 5 s, 1 MiB free.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            fsync_interval: Duration::from_millis(100),
            segment_max_bytes: 8 * 1024 * 1024,
            segment_max_age: Duration::from_secs(5),
            min_free_bytes: 1024 * 1024,
        }
    }
}

/// Why the log could not take a record.
#[derive(Debug, thiserror::Error)]
pub enum UsageLogError {
    /// The disk refused (full, read-only, gone).
    #[error("usage log I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The record could not be encoded.
    #[error("usage record encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The probe's file name in `open/`; never a segment.
const PROBE: &str = ".probe";

struct Segment {
    /// Shared with fsyncs, which run outside the lock.
    file: Arc<File>,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
}

/// The local append-only usage log of one node.
pub struct UsageLog {
    config: UsageLogConfig,
    active: Mutex<Option<Segment>>,
    dirty: AtomicBool,
    next_segment: AtomicU64,
    /// Set by a failed append or by the fsync thread seeing less than
    /// `min_free_bytes` free; cleared only by that thread once the space is back
    /// and a probe write succeeds. (Clearing on a successful append made
    /// readiness flap: a full disk still takes small appends into freed pages.)
    failing: AtomicBool,
}

/// Names sort in writing order: time, then a per-process sequence for segments
/// opened in the same millisecond, then a random suffix against other processes.
fn segment_name(seq: u64) -> String {
    let mut suffix = [0u8; 4];
    random_bytes(&mut suffix);
    format!(
        "{:016}-{seq:010}-{}.jsonl",
        now_unix_ms(),
        resizer_core::ids::to_hex(&suffix)
    )
}

impl UsageLog {
    /// Opens the log in `config.dir`, closes segments a crash left open, and starts
    /// the fsync thread (which ends when the log is dropped).
    pub fn open(config: UsageLogConfig) -> Result<Arc<Self>, UsageLogError> {
        std::fs::create_dir_all(config.dir.join("open"))?;
        std::fs::create_dir_all(config.dir.join("ready"))?;
        for entry in std::fs::read_dir(config.dir.join("open"))? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n == PROBE) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if let Some(name) = path.file_name() {
                File::open(&path)?.sync_all()?;
                std::fs::rename(&path, config.dir.join("ready").join(name))?;
                tracing::info!(segment = %path.display(), "closed a usage segment left open by the last run");
            }
        }
        sync_dir(&config.dir.join("ready"))?;
        sync_dir(&config.dir.join("open"))?;
        let log = Arc::new(Self {
            config,
            active: Mutex::new(None),
            dirty: AtomicBool::new(false),
            next_segment: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&log);
        std::thread::Builder::new()
            .name("usage-fsync".into())
            .spawn(move || fsync_loop(weak))?;
        Ok(log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Segment>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one record with a single write to the OS; returns once the
    /// bytes are in the kernel (durable against a process crash). The lock is
    /// held for that write only: fsyncs, and closing a full segment, run
    /// outside it, so a slow disk never holds up another request's append.
    pub fn append(&self, record: &UsageRecord) -> Result<(), UsageLogError> {
        let line = encode_line(record)?;
        let mut retired = None;
        let result = self.write_line(&line, &mut retired);
        // A segment retired by this append (full, or torn by a failed write) is
        // closed by this caller, after the lock is released.
        let closed = retired.map_or(Ok(()), |s| self.close(s));
        match (&result, closed) {
            (Ok(()), Ok(())) => {
                self.dirty.store(true, Ordering::Release);
                metrics::counter!("resizer_usage_records_logged_total").increment(1);
            }
            (Ok(()), Err(e)) => {
                // The record is in the new segment; only the old one's close failed.
                self.dirty.store(true, Ordering::Release);
                metrics::counter!("resizer_usage_records_logged_total").increment(1);
                metrics::counter!("resizer_usage_log_errors_total").increment(1);
                tracing::error!(error = %e, "closing a usage segment failed");
            }
            (Err(e), _) => {
                self.failing.store(true, Ordering::Release);
                metrics::counter!("resizer_usage_log_errors_total").increment(1);
                tracing::error!(error = %e, "a usage record could not be written to the local log");
            }
        }
        result
    }

    /// Writes `line` into the open segment under the lock, opening one first
    /// when there is none or the open one is full (which goes to `retired`).
    fn write_line(&self, line: &[u8], retired: &mut Option<Segment>) -> Result<(), UsageLogError> {
        let mut active = self.lock();
        if active.as_ref().is_none_or(|s| self.full(s)) {
            *retired = active.take();
            *active = Some(self.create()?);
        }
        let segment = active.as_mut().expect("opened above");
        if let Err(e) = (&*segment.file).write_all(line) {
            // A short write (disk full) would leave half a line that the next
            // record's bytes would be glued to. Cut it off, and start the next
            // record in a fresh segment in case even the cut failed.
            let _ = segment.file.set_len(segment.bytes);
            if let Some(torn) = active.take() {
                drop(active);
                let _ = self.close(torn);
                // Close what this append retired too, if anything.
                if let Some(old) = retired.take() {
                    let _ = self.close(old);
                }
            }
            return Err(e.into());
        }
        segment.bytes += line.len() as u64;
        Ok(())
    }

    fn create(&self) -> Result<Segment, UsageLogError> {
        let path = self
            .config
            .dir
            .join("open")
            .join(segment_name(self.next_segment.fetch_add(1, Ordering::Relaxed)));
        let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        // Records fsynced into a file whose name a crash forgets are lost all the
        // same: make the name durable once, when the segment is created.
        sync_dir(&self.config.dir.join("open"))?;
        Ok(Segment {
            file: Arc::new(file),
            path,
            bytes: 0,
            opened: Instant::now(),
        })
    }

    fn full(&self, s: &Segment) -> bool {
        s.bytes >= self.config.segment_max_bytes || s.opened.elapsed() >= self.config.segment_max_age
    }

    fn close(&self, segment: Segment) -> Result<(), UsageLogError> {
        segment.file.sync_data()?;
        let name = segment
            .path
            .file_name()
            .expect("segment files have names")
            .to_owned();
        let ready = self.config.dir.join("ready");
        std::fs::rename(&segment.path, ready.join(name))?;
        // The rename is durable only once both directories are.
        sync_dir(&ready)?;
        sync_dir(&self.config.dir.join("open"))?;
        Ok(())
    }

    /// Whether the last append (or the probe since) could write. An API node
    /// reports it in its readiness: a full disk makes it refuse every request
    /// (no answer without its record), so the load balancer should route around it.
    pub fn writable(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// Runs on the fsync thread, not on requests: marks the log unwritable when
    /// free space runs low, and writable again once it is back and a probe
    /// write where segments are created succeeds.
    fn probe(&self) {
        let free = available_bytes(&self.config.dir).unwrap_or(0);
        if free < self.config.min_free_bytes {
            if !self.failing.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    free,
                    "the usage log's disk is nearly full; this node stops taking requests"
                );
            }
            return;
        }
        if self.writable() {
            return;
        }
        // Where segments are created, so whatever broke them breaks the probe too.
        let path = self.config.dir.join("open").join(PROBE);
        let result = std::fs::write(&path, [b'\n'; 4096]).and_then(|()| File::open(&path)?.sync_data());
        let _ = std::fs::remove_file(&path);
        if result.is_ok() {
            tracing::info!("the usage log can write again");
            self.failing.store(false, Ordering::Release);
        }
    }

    /// Fsyncs the open segment and closes it if it is due (or `force`). The
    /// fsync runs on a shared handle outside the lock: appends go on meanwhile.
    pub fn sync(&self, force: bool) -> Result<(), UsageLogError> {
        let dirty = self.dirty.swap(false, Ordering::AcqRel);
        let open = self.lock().as_ref().map(|s| s.file.clone());
        if dirty && let Some(file) = open {
            file.sync_data()?;
        }
        let due = {
            let mut active = self.lock();
            if active.as_ref().is_some_and(|s| force || self.full(s)) {
                active.take()
            } else {
                None
            }
        };
        if let Some(segment) = due {
            self.close(segment)?;
        }
        Ok(())
    }

    /// Returns the closed segments waiting to be shipped, oldest first.
    pub fn ready_segments(&self) -> Result<Vec<PathBuf>, UsageLogError> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.config.dir.join("ready"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        out.sort();
        let pending: u64 = out
            .iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum();
        metrics::gauge!("resizer_usage_log_pending_bytes").set(pending as f64);
        Ok(out)
    }
}

impl Drop for UsageLog {
    fn drop(&mut self) {
        if let Err(e) = self.sync(true) {
            tracing::error!(error = %e, "closing the usage log");
        }
    }
}

fn fsync_loop(log: Weak<UsageLog>) {
    loop {
        let interval = match log.upgrade() {
            Some(log) => {
                log.probe();
                if let Err(e) = log.sync(false) {
                    metrics::counter!("resizer_usage_log_errors_total").increment(1);
                    tracing::error!(error = %e, "usage log fsync failed");
                }
                log.config.fsync_interval
            }
            None => return,
        };
        std::thread::sleep(interval);
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and outlives the call; `stat` is writable.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // u64 on this target, narrower on some: the conversion is for those.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

/// Fsyncs a directory, so the names created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a segment's records. A torn line (the process died or the disk
/// filled mid-write, before that request was answered) is skipped and
/// counted, whatever bytes it holds: lines are split as bytes, so a write cut
/// inside a multi-byte character cannot make the whole segment unreadable.
pub fn read_segment(path: &Path) -> Result<(Vec<UsageRecord>, usize), UsageLogError> {
    Ok(parse_segment(BufReader::new(File::open(path)?))?)
}

/// One record as the log writes it: a JSON line. [`parse_segment`] reads it back.
pub fn encode_line(record: &UsageRecord) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    Ok(line)
}

/// [`read_segment`] on any reader: the records of the whole lines, and how
/// many lines were skipped.
pub fn parse_segment(mut reader: impl BufRead) -> std::io::Result<(Vec<UsageRecord>, usize)> {
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if body.is_empty() {
            continue;
        }
        match serde_json::from_slice(body) {
            Ok(r) => records.push(r),
            Err(_) => skipped += 1,
        }
    }
    Ok((records, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;
    use resizer_core::ids::TenantId;

    #[test]
    fn test_records_survive_and_segments_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = UsageLogConfig::new(dir.path().to_path_buf());
        config.segment_max_bytes = 2000;
        let log = UsageLog::open(config.clone()).unwrap();
        let t = TenantId::random();
        let written: Vec<_> = (0..10).map(|i| record(&t, i, 200)).collect();
        for r in &written {
            log.append(r).unwrap();
        }
        // Some segments closed on size; the rest is still open.
        let ready = log.ready_segments().unwrap();
        assert!(!ready.is_empty());
        // A "crash": the log is leaked, never closed; reopening closes what it left open.
        std::mem::forget(log);
        let log = UsageLog::open(config).unwrap();
        let mut read = Vec::new();
        for path in log.ready_segments().unwrap() {
            let (records, skipped) = read_segment(&path).unwrap();
            assert_eq!(skipped, 0);
            read.extend(records);
        }
        assert_eq!(read, written);
    }

    #[test]
    fn test_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let r = record(&TenantId::random(), 1, 200);
        let mut text = serde_json::to_string(&r).unwrap();
        text.push('\n');
        text.push_str("{\"record_id\":\"rec_");
        std::fs::write(&path, text).unwrap();
        let (records, skipped) = read_segment(&path).unwrap();
        assert_eq!((records.len(), skipped), (1, 1));
    }

    #[test]
    fn test_a_line_cut_inside_a_character_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let t = TenantId::random();
        let (a, b) = (record(&t, 1, 200), record(&t, 2, 200));
        let mut bytes = serde_json::to_vec(&a).unwrap();
        bytes.push(b'\n');
        let mut torn = serde_json::to_vec(&record(&t, 3, 200)).unwrap();
        torn.truncate(40);
        torn.extend_from_slice(&"é".as_bytes()[..1]);
        bytes.extend_from_slice(&torn);
        bytes.push(b'\n');
        bytes.extend_from_slice(&serde_json::to_vec(&b).unwrap());
        bytes.push(b'\n');
        std::fs::write(&path, bytes).unwrap();
        let (records, skipped) = read_segment(&path).unwrap();
        assert_eq!((records, skipped), (vec![a, b], 1));
    }

    /// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
    struct SmallDisk {
        dir: tempfile::TempDir,
    }

    impl SmallDisk {
        /// `None` where mounting is not allowed (not root), except in CI, where it must work.
        fn mount(size: &str) -> Option<Self> {
            let dir = tempfile::tempdir().unwrap();
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a tmpfs (run as root)"
                );
                eprintln!("skipped: cannot mount a tmpfs here");
                return None;
            }
            Some(Self { dir })
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
        }
    }

    #[test]
    fn test_a_full_disk_refuses_records_and_keeps_every_accepted_one_readable() {
        let Some(disk) = SmallDisk::mount("64k") else {
            return;
        };
        let root = disk.dir.path().join("usage");
        let mut config = UsageLogConfig::new(root.clone());
        config.segment_max_bytes = 1 << 20;
        let log = UsageLog::open(config.clone()).unwrap();
        let t = TenantId::random();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for i in 0..1000 {
            let r = record(&t, i, 200);
            match log.append(&r) {
                Ok(()) => accepted.push(r),
                Err(UsageLogError::Io(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            refused > 0 && !accepted.is_empty(),
            "{} accepted, {refused} refused",
            accepted.len()
        );
        drop(log);
        // Every record whose append said yes is read back, whole; nothing else is.
        let log = UsageLog::open(config).unwrap();
        let mut read = Vec::new();
        for dir in [root.join("open"), root.join("ready")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                read.extend(read_segment(&entry.unwrap().path()).unwrap().0);
            }
        }
        read.sort_by_key(|r| r.received_unix_ms);
        assert_eq!(read, accepted);
        drop(log);
    }

    #[test]
    fn test_a_full_disk_makes_the_log_unwritable_until_space_returns() {
        let Some(disk) = SmallDisk::mount("64k") else {
            return;
        };
        let mut config = UsageLogConfig::new(disk.dir.path().join("usage"));
        config.min_free_bytes = 8 * 1024;
        let log = UsageLog::open(config).unwrap();
        let t = TenantId::random();
        log.append(&record(&t, 0, 200)).unwrap();
        assert!(log.writable());
        let ballast = disk.dir.path().join("ballast");
        // Fill what is left; the write fails once the filesystem is full.
        let _ = std::fs::write(&ballast, vec![0u8; 128 * 1024]);
        let refused = (1..100).any(|i| log.append(&record(&t, i, 200)).is_err());
        assert!(refused && !log.writable());
        std::fs::remove_file(&ballast).unwrap();
        // The fsync thread's probe notices within a few of its 100 ms ticks.
        let started = Instant::now();
        while !log.writable() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(log.writable(), "still unwritable after space returned");
        log.append(&record(&t, 100, 200)).unwrap();
    }

    #[test]
    fn test_low_free_space_makes_the_log_unwritable_before_any_append_fails() {
        let Some(disk) = SmallDisk::mount("64k") else {
            return;
        };
        let mut config = UsageLogConfig::new(disk.dir.path().join("usage"));
        config.min_free_bytes = 1024 * 1024;
        let log = UsageLog::open(config).unwrap();
        let started = Instant::now();
        while log.writable() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!log.writable(), "64 KiB free, 1 MiB wanted, still writable");
        // Appends still work meanwhile: the node drains instead of failing requests.
        log.append(&record(&TenantId::random(), 0, 200)).unwrap();
    }
}
