//! A VFS shim that hands a commit's WAL frames to the kernel in a few large writes instead of two
//! per page.
//!
//! SQLite appends each frame to the WAL as two writes, its 24-byte header and then its page, so
//! a commit of `n` pages makes `2n` system calls, and each 4 KiB page, shifted by its header,
//! straddles two pages of the kernel's cache. Under load those writes were about a fifth of the
//! writer thread's CPU (docs/BENCHMARKS.md, session 14). This shim keeps a run of contiguous
//! writes to a WAL file in memory and writes it out before any other operation on the file:
//! before the commit's `xSync`, and before any read, truncation, size query, lock or file
//! control. The file therefore sees the same bytes at the same offsets, only in fewer calls, by
//! the time anything can observe them.
//!
//! That is safe because every connection that writes through this shim runs with
//! `synchronous=FULL`, under which SQLite syncs the WAL at every commit *before* it publishes the
//! new frames in the shared index: no other connection can look for a frame still held here.
//! Non-WAL files (the database itself) are opened by the wrapped VFS unchanged.

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

/// The name connections open the shim under.
pub(crate) const VFS_NAME: &str = "apogee-wal-writes";
const VFS_C_NAME: &CStr = c"apogee-wal-writes";

/// Largest run held before it is written anyway (a large transaction spills pages mid-way).
const MAX_PENDING: usize = 4 << 20;
/// Largest single write handed to the wrapped VFS: the unix VFS writes at most 128 KiB − 1
/// bytes per call (its pages are at most 64 KiB) and reports a longer write as a full disk.
const MAX_WRITE: usize = 124 << 10;

/// The VFS the shim wraps: the platform's default.
struct Registered {
    inner: *mut ffi::sqlite3_vfs,
}

// SAFETY: the pointer is to SQLite's static default VFS, which lives as long as the process and
// is only read.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Result<Registered, c_int>> = OnceLock::new();

/// Registers the shim (once per process); connections then name [`VFS_NAME`] to use it.
pub(crate) fn register() -> Result<(), c_int> {
    REGISTERED
        .get_or_init(|| unsafe { register_once() })
        .as_ref()
        .map(|_| ())
        .map_err(|&rc| rc)
}

unsafe fn register_once() -> Result<Registered, c_int> {
    // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS or NULL; its struct is copied, so
    // the shim answers every call it does not intercept exactly as the default would (the copy
    // keeps the default's pAppData, which its own methods read).
    unsafe {
        let rc = ffi::sqlite3_initialize();
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let inner = ffi::sqlite3_vfs_find(std::ptr::null());
        if inner.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        let mut shim = std::ptr::read(inner);
        shim.pNext = std::ptr::null_mut();
        shim.zName = VFS_C_NAME.as_ptr();
        shim.szOsFile = (std::mem::size_of::<WalFile>() + (*inner).szOsFile as usize) as c_int;
        shim.xOpen = Some(open);
        let shim: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(shim));
        let rc = ffi::sqlite3_vfs_register(shim, 0);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        Ok(Registered { inner })
    }
}

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    match REGISTERED.get() {
        Some(Ok(r)) => r.inner,
        _ => std::ptr::null_mut(),
    }
}

/// A WAL file opened through the shim: the methods SQLite calls, the wrapped VFS's own file object
/// (which lives in the same allocation, right after this struct) and the held run of writes.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Off when the device may not overwrite a sector safely: SQLite then pads each commit to a
    /// sector and syncs part-way through the padding, so writes pass straight through.
    hold: bool,
    pending: Vec<u8>,
    /// The file offset of `pending[0]`.
    pending_at: i64,
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner = inner_vfs();
    // SAFETY: SQLite gives `file` szOsFile bytes, room for a WalFile followed by the wrapped
    // VFS's file object; a non-WAL file is the wrapped VFS's object alone, at the start.
    unsafe {
        let Some(inner_open) = inner.as_ref().and_then(|v| v.xOpen) else {
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return inner_open(inner, name, file, flags, out_flags);
        }
        let real = file
            .cast::<u8>()
            .add(std::mem::size_of::<WalFile>())
            .cast::<ffi::sqlite3_file>();
        let rc = inner_open(inner, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        let characteristics = match (*(*real).pMethods).xDeviceCharacteristics {
            Some(m) => m(real),
            None => 0,
        };
        file.cast::<WalFile>().write(WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            real,
            hold: characteristics & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0,
            pending: Vec::new(),
            pending_at: 0,
        });
        ffi::SQLITE_OK
    }
}

/// The shim's state behind a file SQLite handed back to one of [`WAL_METHODS`].
///
/// # Safety
/// `file` must have been opened by [`open`] as a WAL file and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    unsafe { &mut *file.cast::<WalFile>() }
}

/// The wrapped file's methods.
unsafe fn real_methods(f: &WalFile) -> &ffi::sqlite3_io_methods {
    unsafe { &*(*f.real).pMethods }
}

/// Writes the held run, if any, through the wrapped file, in pieces of at most [`MAX_WRITE`].
unsafe fn flush(f: &mut WalFile) -> c_int {
    let mut rc = ffi::SQLITE_OK;
    let mut at = f.pending_at;
    for piece in f.pending.chunks(MAX_WRITE) {
        // SAFETY: `real` is the wrapped VFS's open file; a piece is at most MAX_WRITE bytes.
        rc = unsafe {
            match real_methods(f).xWrite {
                Some(write) => write(f.real, piece.as_ptr().cast(), piece.len() as c_int, at),
                None => ffi::SQLITE_IOERR_WRITE,
            }
        };
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += piece.len() as i64;
    }
    f.pending.clear();
    rc
}

/// Flushes, then runs `call` on the wrapped file (or fails with `missing` if it has no such
/// method).
macro_rules! flushed {
    ($file:expr, $method:ident, $missing:expr, |$m:ident, $real:ident| $call:expr) => {{
        // SAFETY: SQLite calls WAL_METHODS only with files `open` set up as WAL files.
        let f = unsafe { wal($file) };
        let rc = unsafe { flush(f) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let $real = f.real;
        match unsafe { real_methods(f) }.$method {
            Some($m) => unsafe { $call },
            None => $missing,
        }
    }};
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: as in `flushed!`; SQLite passes `amount` readable bytes at `buf`.
    let f = unsafe { wal(file) };
    if !f.hold {
        return match unsafe { real_methods(f) }.xWrite {
            Some(m) => unsafe { m(f.real, buf, amount, offset) },
            None => ffi::SQLITE_IOERR_WRITE,
        };
    }
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let contiguous = offset == f.pending_at + f.pending.len() as i64;
    if !f.pending.is_empty() && (!contiguous || f.pending.len() + len > MAX_PENDING) {
        let rc = unsafe { flush(f) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if f.pending.is_empty() {
        f.pending_at = offset;
    }
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    f.pending.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `flushed!`; after this the WalFile is dropped in place and never used again.
    unsafe {
        let f = wal(file);
        let flushed = flush(f);
        let closed = match real_methods(f).xClose {
            Some(close) => close(f.real),
            None => ffi::SQLITE_OK,
        };
        std::ptr::drop_in_place(file.cast::<WalFile>());
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    flushed!(file, xRead, ffi::SQLITE_IOERR_READ, |m, real| m(
        real, buf, amount, offset
    ))
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    flushed!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, |m, real| m(
        real, size
    ))
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flushed!(file, xSync, ffi::SQLITE_IOERR_FSYNC, |m, real| m(
        real, flags
    ))
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    flushed!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, |m, real| m(
        real, size
    ))
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flushed!(file, xLock, ffi::SQLITE_OK, |m, real| m(real, level))
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flushed!(file, xUnlock, ffi::SQLITE_OK, |m, real| m(real, level))
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    flushed!(file, xCheckReservedLock, ffi::SQLITE_OK, |m, real| m(
        real, out
    ))
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    flushed!(file, xFileControl, ffi::SQLITE_NOTFOUND, |m, real| m(
        real, op, arg
    ))
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `flushed!`; the sector size is a constant of the file, nothing to flush.
    let f = unsafe { wal(file) };
    match unsafe { real_methods(f) }.xSectorSize {
        Some(m) => unsafe { m(f.real) },
        None => 4096,
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `sector_size`.
    let f = unsafe { wal(file) };
    match unsafe { real_methods(f) }.xDeviceCharacteristics {
        Some(m) => unsafe { m(f.real) },
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::open_connection;
    use rusqlite::OpenFlags;

    #[test]
    fn the_shim_is_named_as_registered() {
        assert_eq!(VFS_C_NAME.to_str(), Ok(VFS_NAME));
    }

    #[test]
    fn committed_frames_reach_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = open_connection(&path, OpenFlags::default()).unwrap();
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        writer
            .execute("INSERT INTO t (v) VALUES ('one')", [])
            .unwrap();
        let reader = open_connection(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        crate::open(&dir.path().join("s.db")).await.unwrap();
    }

    /// Two transactions of more than MAX_PENDING bytes of frames each: the first held and
    /// written in several runs, the second under a cache small enough that SQLite spills pages
    /// to the WAL mid-transaction and then writes some of them again in place (the held run is
    /// written out and restarted at each such jump).
    #[test]
    fn large_transactions_with_spills_and_rewrites_stay_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.db");
        let mut writer = open_connection(&path, OpenFlags::default()).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);
                 CREATE INDEX t_v ON t (v);",
            )
            .unwrap();
        for (cache_pages, keys) in [(10_000, 0..3_000), (16, 3_000..6_000)] {
            writer
                .execute_batch(&format!("PRAGMA cache_size = {cache_pages}"))
                .unwrap();
            let tx = writer.transaction().unwrap();
            for k in keys {
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, ?2)",
                    (k, format!("{k:08}-{}", "x".repeat(1_000))),
                )
                .unwrap();
            }
            tx.execute("UPDATE t SET v = 'changed-' || v WHERE k % 7 = 0", [])
                .unwrap();
            tx.commit().unwrap();
        }
        let reader = open_connection(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let (n, changed): (i64, i64) = reader
            .query_row("SELECT count(*), sum(v LIKE 'changed-%') FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, changed), (6_000, 858));
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(reader);
        drop(writer);
        let again = open_connection(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = again
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6_000);
    }
}
