//! The state directory (`--state-dir`): a versioned snapshot of what a restart
//! needs so it does not re-emit what was already emitted.
//!
//! File `state.bin`, all integers little-endian:
//!
//! ```text
//! magic    16 B  "LOGDEDUP-STATE\0\0"
//! version   4 B  3 (2 is still read: its bloom filters cover one window each;
//!                1 too: its bloom filters have no layout byte either)
//! settings  4 B length + UTF-8: the flags that decide what a key is
//!                (--key, --key-type, --delimiter, --window, bloom on/off);
//!                a snapshot written under other settings is refused
//! seed     24 B  bloom seed, SipHash k0, k1
//! clock     1 B  has-window flag + 8 B newest window index
//! local     8 B length + the local tier (bitmaps in roaring's portable format per
//!                window; bloom filters with the windows each covers, or bloom
//!                hashes per window: [`LocalTier::save`])
//! exact     8 B length + the in-process exact tier (fingerprints per window)
//! check     8 B  xxh3-64 of every byte before it
//! ```
//!
//! IDs are written per window whatever layout held them (one set per window, or
//! one entry per ID under a large `--retain`), so a snapshot loads under any
//! `--retain`, and writing one takes time in proportion to what it holds, not to
//! `--retain`.
//!
//! Writing is atomic: write `state.bin.tmp`, fsync it, rename it over `state.bin`,
//! fsync the directory. A crash leaves either the old or the new snapshot, never a
//! mix. A damaged, truncated or foreign file is an error, never a silent fresh
//! start: a fresh start would re-emit everything already emitted.
//!
//! Snapshots are taken only after the sink has flushed every record whose ID the
//! snapshot holds, so after `kill -9` a restart can re-emit records (duplicates
//! downstream) but never skip one that was not written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result, StateError};
use crate::exact::ExactTier;
use crate::hash::Seed;
use crate::local::LocalTier;
use crate::window::WindowIndex;

const MAGIC: &[u8; 16] = b"LOGDEDUP-STATE\0\0";
/// The format this version writes; every format from 1 up to it is read.
pub(crate) const VERSION: u32 = 3;
const FILE: &str = "state.bin";
/// The lock file (empty; only its `flock` matters).
const LOCK: &str = "lock";

/// What a snapshot restores.
#[derive(Debug)]
pub struct Loaded {
    /// The deployment's seed.
    pub seed: Seed,
    /// The newest window seen.
    pub newest: Option<WindowIndex>,
}

/// A state directory, locked for the life of the process.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    settings: String,
    /// `lock` in the directory, held with an exclusive `flock(2)`: the kernel
    /// releases it when the process ends, however it ends (`kill -9` too).
    _lock: File,
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Xxh3,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.hash.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl StateDir {
    /// A state directory at `dir` (created if missing) for runs with `settings`.
    ///
    /// One process at a time: two runs over one directory would each write their
    /// own snapshot over the other's (and share `state.bin.tmp` while writing), so
    /// a second run is refused while the first holds the directory's lock.
    pub fn open(dir: &Path, settings: String) -> Result<StateDir> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("--state-dir: cannot create {}", dir.display()), e))?;
        let path = dir.join(LOCK);
        // Read-only once it exists (flock needs no more): a directory handed to
        // another user keeps working with a lock file an earlier run created.
        let lock = File::open(&path)
            .or_else(|_| File::options().create(true).truncate(false).write(true).open(&path))
            .map_err(|e| Error::io(format!("--state-dir: cannot open {}", path.display()), e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {
                    return Err(StateError::InUse { dir: dir.to_path_buf() }.into())
                }
                // A file system without flock (some network mounts): the runs
                // go on without the one-process check.
                Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {}
                _ => {
                    let what = format!("--state-dir: cannot lock {}", path.display());
                    return Err(Error::io(what, e));
                }
            }
        }
        Ok(StateDir { dir: dir.to_path_buf(), settings, _lock: lock })
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Writes a snapshot atomically.
    pub fn save(
        &self,
        seed: &Seed,
        newest: Option<WindowIndex>,
        local: &LocalTier,
        exact: Option<&dyn ExactTier>,
    ) -> Result<()> {
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let werr = |e| Error::io(format!("--state-dir: writing {}", tmp.display()), e);
        let file = File::create(&tmp).map_err(werr)?;
        let mut w = Hashing { inner: BufWriter::with_capacity(1 << 20, file), hash: Xxh3::new() };
        let mut body = || -> io::Result<()> {
            w.write_all(MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(self.settings.len() as u32).to_le_bytes())?;
            w.write_all(self.settings.as_bytes())?;
            w.write_all(&seed.to_bytes())?;
            w.write_all(&[u8::from(newest.is_some())])?;
            w.write_all(&newest.map_or(0, |n| n.0).to_le_bytes())?;
            // Sections are length-prefixed so a reader can tell where each ends.
            let mut section = Vec::new();
            local.save(&mut section)?;
            w.write_all(&(section.len() as u64).to_le_bytes())?;
            w.write_all(&section)?;
            section.clear();
            if let Some(exact) = exact {
                exact.save(&mut section)?;
            }
            w.write_all(&(section.len() as u64).to_le_bytes())?;
            w.write_all(&section)?;
            let check = w.hash.digest();
            w.inner.write_all(&check.to_le_bytes())?;
            w.inner.flush()?;
            Ok(())
        };
        body().map_err(werr)?;
        let file = w.inner.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(werr)?;
        drop(file);
        fs::rename(&tmp, self.path()).map_err(werr)?;
        // The rename is durable only once the directory entry is.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Loads the snapshot into `local` and `exact`, or returns `None` when there is
    /// none yet.
    pub fn load(
        &self,
        local: &mut LocalTier,
        exact: Option<&mut dyn ExactTier>,
    ) -> Result<Option<Loaded>> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("--state-dir: reading {}", path.display()), e)),
        };
        let mut r = Cursor::open(&path, &bytes)?;
        let version = u32::from_le_bytes(r.array()?);
        if !(1..=VERSION).contains(&version) {
            return Err(StateError::Version { path, found: version, newest: VERSION }.into());
        }
        let slen = u32::from_le_bytes(r.array()?) as usize;
        let written = String::from_utf8_lossy(r.take(slen)?).into_owned();
        if written != self.settings {
            let differ = crate::settings::differences(&written, &self.settings);
            let run = self.settings.clone();
            return Err(StateError::Settings { path, written, run, differ }.into());
        }
        let seed = Seed::from_bytes(&r.array()?);
        let has = r.take(1)?[0] == 1;
        let newest = i64::from_le_bytes(r.array()?);
        let mut lsec = r.section()?;
        local.load(&mut lsec, version).map_err(|e| damaged(&path, format!("local tier: {e}")))?;
        let mut esec = r.section()?;
        load_exact(&path, &mut esec, exact)?;
        if !lsec.is_empty() || !esec.is_empty() || !r.rest.is_empty() {
            return Err(damaged(&path, "trailing bytes"));
        }
        Ok(Some(Loaded { seed, newest: has.then_some(WindowIndex(newest)) }))
    }
}

/// Loads the exact tier's section, which is empty unless the in-process tier
/// wrote it: a run that keeps fingerprints needs them, and one that keeps none
/// must not drop those it was given.
fn load_exact(path: &Path, esec: &mut &[u8], exact: Option<&mut dyn ExactTier>) -> Result<()> {
    let changed = |had, has| StateError::ExactChanged { path: path.to_path_buf(), had, has };
    match exact {
        Some(e) if e.keeps_state() => {
            if esec.is_empty() {
                return Err(
                    changed("no in-process fingerprints", "keeps them (--exact memory)").into()
                );
            }
            e.load(esec).map_err(|e| damaged(path, format!("exact tier: {e}")))
        }
        _ if !esec.is_empty() => {
            Err(changed("in-process fingerprints (--exact memory)", "keeps none").into())
        }
        _ => Ok(()),
    }
}

/// The snapshot at `path` cannot be used, because of `why`.
fn damaged(path: &Path, why: impl Into<String>) -> Error {
    StateError::Damaged { path: path.to_path_buf(), why: why.into() }.into()
}

/// A snapshot's body, read front to back: running out is `truncated`.
struct Cursor<'a> {
    path: &'a Path,
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// The body of the snapshot `bytes`, after checking its magic and checksum.
    fn open(path: &'a Path, bytes: &'a [u8]) -> Result<Cursor<'a>> {
        if bytes.len() < MAGIC.len() + 8 || &bytes[..16] != MAGIC {
            return Err(damaged(path, "bad magic"));
        }
        let (body, check) = bytes.split_at(bytes.len() - 8);
        if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(check.try_into().unwrap()) {
            return Err(damaged(path, "checksum mismatch"));
        }
        Ok(Cursor { path, rest: &body[16..] })
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(damaged(self.path, "truncated"));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    /// The next `N` bytes, as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    /// A section: its length (8 bytes), then as many bytes.
    fn section(&mut self) -> Result<&'a [u8]> {
        let len = u64::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::{ExactQuery, MemoryTier};

    #[test]
    fn save_load_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path(), "key=line".into()).unwrap();
        let mut local = LocalTier::new(false, 1e-4, Some(10));
        let mut exact = MemoryTier::new();
        assert!(sd.load(&mut local, Some(&mut exact)).unwrap().is_none());
        local.check_insert_int(5, WindowIndex(1), WindowIndex(1));
        let mut a = Vec::new();
        exact
            .check_and_insert(
                &[ExactQuery {
                    fp: 9,
                    oldest: WindowIndex(1),
                    own: WindowIndex(1),
                    local_new: false,
                    int: false,
                }],
                &mut a,
            )
            .unwrap();
        let seed = Seed::random();
        sd.save(&seed, Some(WindowIndex(1)), &local, Some(&exact)).unwrap();

        let mut l2 = LocalTier::new(false, 1e-4, Some(10));
        let mut e2 = MemoryTier::new();
        let got = sd.load(&mut l2, Some(&mut e2)).unwrap().unwrap();
        assert_eq!(got.seed, seed);
        assert_eq!(got.newest, Some(WindowIndex(1)));
        assert!(l2.check_insert_int(5, WindowIndex(1), WindowIndex(1)));
        assert_eq!(e2.stats().fingerprints, 1);

        // One holder at a time.
        let err = StateDir::open(dir.path(), "key=line".into()).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
        drop(sd);

        // Other settings: refused.
        let other = StateDir::open(dir.path(), "key=.id".into()).unwrap();
        let err = other.load(&mut l2, Some(&mut e2)).unwrap_err().to_string();
        assert!(err.contains("other settings"), "{err}");
        drop(other);
        let sd = StateDir::open(dir.path(), "key=line".into()).unwrap();

        // Any flipped byte: refused.
        let mut bytes = fs::read(sd.path()).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(sd.path(), &bytes).unwrap();
        assert!(sd.load(&mut l2, Some(&mut e2)).unwrap_err().to_string().contains("damaged"));
        fs::write(sd.path(), b"hello").unwrap();
        assert!(sd.load(&mut l2, Some(&mut e2)).unwrap_err().to_string().contains("damaged"));
    }
}
