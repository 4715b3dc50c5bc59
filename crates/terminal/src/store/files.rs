//! Biometric files (templates, face crops): written atomically, readable by the service
//! user only, and really gone when deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Creates `dir` (and parents) with mode 0700, tightening an existing one.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Makes `path` readable by the service user only: created empty (mode 0600) if `create`
/// and missing, tightened to 0600 if it exists; a missing file is left missing otherwise.
pub(crate) fn make_private_file(path: &Path, create: bool) -> io::Result<()> {
    if create {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to `dir/name` so that a crash leaves either the old file or the new
/// one, never half of it: temp file, fsync, rename, fsync of the directory. Mode 0600.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Deletes a file; a file already gone is not an error.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// File names in `dir` (not recursing), or none if it does not exist.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        if e.file_type()?.is_file() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Takes an exclusive lock on `path` (created 0600) and writes our pid into it: one
/// daemon per database. The kernel drops the lock when the process dies, however it
/// dies. `Err(pid)` names the process holding it.
pub(crate) fn lock_exclusive(path: &Path) -> io::Result<Result<Flock<File>, String>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            lock.set_len(0)?;
            (&*lock).write_all(std::process::id().to_string().as_bytes())?;
            Ok(Ok(lock))
        }
        Err((_, Errno::EWOULDBLOCK)) => {
            let pid = fs::read_to_string(path).unwrap_or_default();
            Ok(Err(pid.trim().to_owned()))
        }
        Err((_, e)) => Err(e.into()),
    }
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> io::Result<u64> {
    let s = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    // Both are 32-bit on armv7: widen before multiplying.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(s.blocks_available()) * u64::from(s.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = std::env::temp_dir().join(format!("att-files-{}", std::process::id()));
        ensure_private_dir(&dir).unwrap();
        let p = write_atomic(&dir, "a.npy", b"one").unwrap();
        write_atomic(&dir, "a.npy", b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(list(&dir).unwrap(), vec!["a.npy".to_owned()]);
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert!(free_bytes(&dir).unwrap() > 0);
        // One holder at a time; the next one learns who holds it.
        let lock_path = dir.join("db.lock");
        let held = lock_exclusive(&lock_path).unwrap().unwrap();
        assert_eq!(
            lock_exclusive(&lock_path).unwrap().unwrap_err(),
            std::process::id().to_string()
        );
        drop(held);
        assert!(lock_exclusive(&lock_path).unwrap().is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
