//! A crash-safe append-only hint log on files (feature `log`): the I/O the machine leaves
//! to the application, kept out of the machine.
//!
//! The log is a directory of segment files `hints-NNNNNNNNNNNNNNNN.log`, read in order.
//! Each record is framed as
//!
//! ```text
//! +-------------+---------------+---------------------------+
//! | len: u32 LE | crc32c: u32 LE| postcard(LogRecord), len B |
//! +-------------+---------------+---------------------------+
//! ```
//!
//! On open, every segment is read up to its first damaged record (short header, length
//! beyond the file or over [`MAX_RECORD`], checksum mismatch, undecodable body): every
//! record before the damage is recovered, the damaged tail of the **last** segment is
//! truncated away (a torn write from a crash), and damage in an earlier segment is
//! reported. [`HintLog::compact`] rewrites the live hints into a fresh segment and deletes
//! the older ones, so the log does not grow with delivered hints. How often data reaches
//! the disk is the [`SyncPolicy`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::durable::{HintRecord, LogRecord, MemLog};

/// Largest record body accepted, in bytes (a mutation is at most 1 MiB by default).
pub const MAX_RECORD: usize = 16 << 20;

const HEADER: usize = 8;

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fsync` after every append: a returned append survives power loss (Cassandra's
    /// `commitlog_sync: batch`).
    Always,
    /// `fsync` after every this many appends (Cassandra's `periodic`, by count).
    Every(u32),
    /// Leave it to the OS: survives a process crash, not a power loss.
    Never,
}

/// Options of a [`HintLog`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogOptions {
    /// When appends reach the disk. Default [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// A segment is closed and a new one started past this size. Default 32 MiB
    /// (Cassandra's `max_hints_file_size` is 128 MiB).
    pub max_segment_bytes: u64,
    /// [`HintLog::maybe_compact`] compacts once the live hints are below this share of
    /// the records on disk. Default 0.5.
    pub compact_below: f64,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            max_segment_bytes: 32 << 20,
            compact_below: 0.5,
        }
    }
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments read.
    pub segments: usize,
    /// Intact records read.
    pub records: u64,
    /// Bytes of a torn tail truncated from the last segment.
    pub torn_bytes: u64,
    /// Earlier segments with damage (their records after it are lost).
    pub damaged_segments: usize,
}

/// A crash-safe append-only hint log in a directory.
#[derive(Debug)]
pub struct HintLog {
    dir: PathBuf,
    options: LogOptions,
    /// Segment numbers on disk, oldest first; the last is the one appended to.
    segments: Vec<u64>,
    file: File,
    size: u64,
    live: MemLog,
    /// Records on disk across every segment.
    on_disk: u64,
    unsynced: u32,
    buf: Vec<u8>,
}

impl HintLog {
    /// Opens (or creates) the log in `dir`, recovering every intact record.
    ///
    /// # Errors
    /// I/O errors of the directory or files.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> io::Result<(Self, Recovery)> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut segments: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter_map(|e| parse_segment(&e.file_name().to_string_lossy()))
            .collect();
        segments.sort_unstable();
        let mut live = MemLog::new();
        let mut rec = Recovery {
            segments: segments.len(),
            ..Recovery::default()
        };
        let mut on_disk = 0;
        let mut last_good = 0;
        for (i, seg) in segments.iter().enumerate() {
            let mut bytes = Vec::new();
            File::open(segment_path(&dir, *seg))?.read_to_end(&mut bytes)?;
            let (good, count) = scan(&bytes, |r| live.apply(&r));
            rec.records += count;
            on_disk += count;
            if good < bytes.len() {
                if i + 1 == segments.len() {
                    rec.torn_bytes = (bytes.len() - good) as u64;
                } else {
                    rec.damaged_segments += 1;
                }
            }
            last_good = good as u64;
        }
        if segments.is_empty() {
            segments.push(1);
            last_good = 0;
        }
        let current = *segments.last().unwrap_or(&1);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&dir, current))?;
        // Cut a torn tail so that the next append starts on a record boundary.
        file.set_len(last_good)?;
        file.sync_all()?;
        sync_dir(&dir)?;
        Ok((
            Self {
                dir,
                options,
                segments,
                file,
                size: last_good,
                live,
                on_disk,
                unsynced: 0,
                buf: Vec::new(),
            },
            rec,
        ))
    }

    /// Appends one record (and syncs per the policy). Returns once it is as durable as the
    /// policy promises: persist a hint this way before acknowledging the write it covers.
    ///
    /// # Errors
    /// I/O errors; [`io::ErrorKind::InvalidInput`] for a record over [`MAX_RECORD`].
    pub fn append(&mut self, record: &LogRecord) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; HEADER]);
        let body = postcard::to_extend(record, std::mem::take(&mut self.buf))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.buf = body;
        let len = self.buf.len() - HEADER;
        if len > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record too large",
            ));
        }
        let crc = crc32c(&self.buf[HEADER..]);
        // `len` is at most MAX_RECORD, which fits a u32.
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len32.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        if self.size > 0 && self.size + self.buf.len() as u64 > self.options.max_segment_bytes {
            self.roll()?;
        }
        self.file.write_all(&self.buf)?;
        self.size += self.buf.len() as u64;
        self.on_disk += 1;
        self.live.apply(record);
        self.unsynced += 1;
        let sync = match self.options.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(n) => self.unsynced >= n.max(1),
            SyncPolicy::Never => false,
        };
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Forces everything appended to disk.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = 0;
        Ok(())
    }

    /// The live hints (every put not removed), oldest first: what
    /// [`Node::from_log`](crate::Node::from_log) takes.
    pub fn records(&self) -> impl Iterator<Item = &HintRecord> {
        self.live.records()
    }

    /// Live hints.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no hint is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Bytes in the current segment (a record boundary).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.size
    }

    /// Segment files on disk.
    #[must_use]
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Compacts if the live hints are below [`LogOptions::compact_below`] of the records
    /// on disk. Returns whether it compacted.
    ///
    /// # Errors
    /// I/O errors (the log stays readable: old segments are deleted only after the new one
    /// is durable).
    pub fn maybe_compact(&mut self) -> io::Result<bool> {
        #[allow(clippy::cast_precision_loss)]
        let share = self.live.len() as f64 / self.on_disk.max(1) as f64;
        if self.on_disk > 64 && share < self.options.compact_below {
            self.compact()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Rewrites the live hints into a new segment, makes it durable, then deletes every
    /// older segment. A crash in between leaves both; reading both gives the same hints.
    ///
    /// # Errors
    /// I/O errors.
    pub fn compact(&mut self) -> io::Result<()> {
        let live: Vec<HintRecord> = self.live.records().cloned().collect();
        let old = std::mem::take(&mut self.segments);
        self.segments = old.clone();
        self.roll()?;
        self.live = MemLog::new();
        self.on_disk = 0;
        let policy = self.options.sync;
        self.options.sync = SyncPolicy::Never;
        let result = live
            .into_iter()
            .try_for_each(|h| self.append(&LogRecord::Put(h)));
        self.options.sync = policy;
        result?;
        self.sync()?;
        sync_dir(&self.dir)?;
        let keep = self.segments.len() - 1;
        for seg in self.segments.drain(..keep) {
            fs::remove_file(segment_path(&self.dir, seg))?;
        }
        sync_dir(&self.dir)
    }

    /// Closes the current segment and starts the next.
    fn roll(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let next = self.segments.last().map_or(1, |s| s + 1);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, next))?;
        self.segments.push(next);
        self.size = 0;
        self.unsynced = 0;
        sync_dir(&self.dir)
    }
}

/// Reads records from `bytes` up to the first damaged one, handing each to `f`. Returns
/// the length of the intact prefix and the records in it. Never panics.
pub fn scan(bytes: &[u8], mut f: impl FnMut(LogRecord)) -> (usize, u64) {
    let mut at = 0;
    let mut count = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let Ok(len) = usize::try_from(len) else { break };
        if len > MAX_RECORD || bytes.len() - at - HEADER < len {
            break;
        }
        let body = &bytes[at + HEADER..at + HEADER + len];
        if crc32c(body) != crc {
            break;
        }
        let Ok(record) = postcard::from_bytes::<LogRecord>(body) else {
            break;
        };
        f(record);
        count += 1;
        at += HEADER + len;
    }
    (at, count)
}

fn segment_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("hints-{seg:016}.log"))
}

fn parse_segment(name: &str) -> Option<u64> {
    name.strip_prefix("hints-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directories can be opened and synced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// CRC-32C (Castagnoli), the checksum of ext4, iSCSI and Cassandra's hints files.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            // `i` < 256: the cast is exact.
            #[allow(clippy::cast_possible_truncation)]
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn scan_never_panics_on_garbage() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let (good, n) = scan(&junk, |_| {});
            assert!(good <= junk.len());
            assert_eq!(n, 0);
        }
        let huge = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1];
        assert_eq!(scan(&huge, |_| {}), (0, 0));
    }
}
