//! Power cuts: a process run with [`PowerCut::env`] logs what each write under the
//! watched folder overwrote and each name it changed (tests/common/powercut.c, built here
//! with `cc`); once it is killed, [`PowerCut::cut`] undoes the writes and the name changes
//! no fsync covered, as losing the page cache would.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One folder's power: the shim, the folder, and the undo logs.
pub struct PowerCut {
    dir: PathBuf,
    logs: tempfile::TempDir,
}

/// What one cut undid.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Undone {
    /// Writes (and truncations) that never reached the disk.
    pub writes: usize,
    /// Unsynced writes that reached the disk all the same.
    pub kept: usize,
    /// Bytes those lost writes had written.
    pub bytes: u64,
    /// Names created, renamed or unlinked that never reached the disk.
    pub names: usize,
}

impl std::ops::AddAssign for Undone {
    fn add_assign(&mut self, o: Undone) {
        self.writes += o.writes;
        self.kept += o.kept;
        self.bytes += o.bytes;
        self.names += o.names;
    }
}

/// The shim, compiled once per test binary (warnings are errors: a sloppy interposer
/// would be a broken instrument).
fn shim() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/powercut.c");
        // Built under this process's name, then renamed into place: another test
        // binary's daemon may have the last one mapped.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let (building, out) = (
            tmp.join(format!("powercut-{}.so", std::process::id())),
            tmp.join("powercut.so"),
        );
        let st = Command::new("cc")
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
            ])
            .arg("-o")
            .arg(&building)
            .arg(&src)
            .arg("-ldl")
            .status()
            .expect("cc (the C compiler SQLite's build uses; apt install gcc)");
        assert!(st.success(), "cc failed to build {}", src.display());
        fs::rename(&building, &out).unwrap();
        out
    })
}

impl PowerCut {
    /// Watches `dir` (which must exist) from the next process started with `env()`.
    pub fn new(dir: &Path) -> PowerCut {
        PowerCut {
            dir: dir.canonicalize().expect("watched folder"),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    /// The environment that puts a process under this power.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("LD_PRELOAD", shim().display().to_string()),
            ("POWERCUT_DIR", self.dir.display().to_string()),
            ("POWERCUT_LOG", self.logs.path().display().to_string()),
        ]
    }

    /// The power goes: call once the process is dead. Each file under the folder goes
    /// back to its last sync, except the first `reached(n)` of its `n` later writes
    /// (a disk writes some of its cache back on its own, in order); then the names go
    /// back to the folders' last syncs, except the first `reached(n)` changes.
    pub fn cut(&self, mut reached: impl FnMut(usize) -> usize) -> Undone {
        let logs = self.logs.path();
        let mut files = inodes(&self.dir);
        files.extend(inodes(logs)); // unlinked or replaced files kept alive there
        let mut undone = Undone::default();
        for entry in fs::read_dir(logs).unwrap() {
            let log = entry.unwrap().path();
            if log.extension().is_none_or(|e| e != "undo") {
                continue;
            }
            let records = records(&fs::read(&log).unwrap());
            let name = log.file_stem().unwrap().to_string_lossy().into_owned();
            let Some(path) = files.get(&name) else {
                continue; // gone for good (its folder synced since)
            };
            let kept = reached(records.len()).min(records.len());
            let f = OpenOptions::new().write(true).open(path).unwrap();
            for r in records[kept..].iter().rev() {
                f.set_len(r.size).unwrap();
                f.write_all_at(&r.old, r.offset).unwrap();
                undone.bytes += r.len;
            }
            f.sync_all().unwrap();
            undone.writes += records.len() - kept;
            undone.kept += kept;
        }
        let names = fs::read_to_string(logs.join("names")).unwrap_or_default();
        // A last line without its newline was cut short: its change never ran.
        let changes: Vec<&str> = names
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        let kept = reached(changes.len()).min(changes.len());
        for line in changes[kept..].iter().rev() {
            undo_name_change(line.trim_end_matches('\n'));
            undone.names += 1;
        }
        for entry in fs::read_dir(logs).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        undone
    }
}

/// Undoes one line of the names log: `folder TAB op TAB a TAB b TAB kept`.
fn undo_name_change(line: &str) {
    let f: Vec<&str> = line.split('\t').collect();
    let [_, op, a, b, kept] = f[..] else {
        panic!("names log line: {line:?}");
    };
    let (a, b) = (Path::new(a), Path::new(b));
    match op {
        // Created: gone (a folder with what it holds).
        "C" if a.is_dir() => fs::remove_dir_all(a).unwrap(),
        "C" if a.exists() => fs::remove_file(a).unwrap(),
        "C" => {}
        // Unlinked: back.
        "U" if !a.exists() => fs::hard_link(kept, a).unwrap(),
        "U" => {}
        // Renamed: back to the old name, and what it replaced back in place.
        "R" => {
            if b.exists() {
                fs::rename(b, a).unwrap();
            }
            if kept != "-" {
                fs::hard_link(kept, b).unwrap();
            }
        }
        _ => panic!("names log line: {line:?}"),
    }
}

/// `dev-ino` → path of every regular file under `dir`.
fn inodes(dir: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                out.insert(format!("{}-{}", m.dev(), m.ino()), p);
            }
        }
    }
    out
}

/// One logged write: where, the file's size before, how much it wrote, what it covered.
struct Record {
    offset: u64,
    size: u64,
    len: u64,
    old: Vec<u8>,
}

/// The log's records; a truncated last one (the kill landed while it was written, so its
/// write never ran) is left out.
fn records(mut b: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let word = |b: &[u8], i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    while b.len() >= 32 {
        let saved = word(b, 3) as usize;
        if b.len() < 32 + saved {
            break;
        }
        out.push(Record {
            offset: word(b, 0),
            size: word(b, 1),
            len: word(b, 2),
            old: b[32..32 + saved].to_vec(),
        });
        b = &b[32 + saved..];
    }
    out
}
