//! Keeps secret bytes out of swap and core dumps: the pages under every secret buffer are locked
//! in RAM (`mlock`) and left out of core dumps (`MADV_DONTDUMP`) while a secret lives on them.
//!
//! Heap buffers share pages, so locks are counted per page: a page is unlocked only when the last
//! secret on it is dropped (after being wiped). When the kernel refuses a lock (`RLIMIT_MEMLOCK`,
//! 8 MiB by default under systemd, or a locked-memory cgroup limit), ramlet says so once and goes
//! on: the shipped units set `MemorySwapMax=0`, which keeps the whole process out of swap, and
//! core dumps are off for the process (`PR_SET_DUMPABLE` 0, `RLIMIT_CORE` 0, `LimitCORE=0`).
//!
//! The only module allowed `unsafe`: `mlock(2)`, `munlock(2)` and `madvise(2)` are `unsafe` in
//! nix because they take a raw address.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::mman::{MmapAdvise, madvise, mlock, munlock};

/// Secrets per page: a page is locked while its count is above zero.
static PAGES: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// Whether a refusal was already reported.
static REFUSED: AtomicBool = AtomicBool::new(false);

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(4096)
}

/// The start addresses of the pages `bytes` lies on.
fn pages(bytes: &[u8]) -> impl Iterator<Item = usize> + use<> {
    let size = page_size();
    let start = bytes.as_ptr().addr();
    let first = start / size;
    let last = (start + bytes.len().max(1) - 1) / size;
    (first..=last).map(move |page| page * size)
}

/// The page at `address`, as the pointer the syscalls take.
fn page_pointer(address: usize) -> Option<NonNull<c_void>> {
    NonNull::new(std::ptr::with_exposed_provenance_mut::<c_void>(address))
}

/// Locks the pages under `bytes` and leaves them out of core dumps. Best effort: a refusal is
/// logged once (without any content) and the secret is kept all the same.
pub fn lock(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // The page addresses below are rebuilt from integers (`page_pointer`): expose the buffer's.
    let _ = bytes.as_ptr().expose_provenance();
    let Ok(mut counts) = PAGES.lock() else {
        return;
    };
    let size = page_size();
    for page in pages(bytes) {
        let count = counts.entry(page).or_insert(0);
        *count += 1;
        if *count > 1 {
            continue;
        }
        let Some(pointer) = page_pointer(page) else {
            continue;
        };
        // SAFETY: `page` is the start of a page that holds part of `bytes`, a live slice, so it
        // is mapped. mlock and MADV_DONTDUMP change only whether the page may be swapped out or
        // dumped, never its contents or its mapping; an error leaves the page as it was.
        let locked = unsafe { mlock(pointer, size) };
        // SAFETY: as above.
        let _ = unsafe { madvise(pointer, size, MmapAdvise::MADV_DONTDUMP) };
        if let Err(errno) = locked
            && !REFUSED.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(%errno, "cannot lock secret memory in RAM (raise LimitMEMLOCK= to allow it); relying on the unit's MemorySwapMax=0 to keep secrets out of swap");
        }
    }
}

/// Releases the pages under `bytes` (wiped already) that no other secret lies on.
pub fn unlock(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Ok(mut counts) = PAGES.lock() else {
        return;
    };
    let size = page_size();
    for page in pages(bytes) {
        let Some(count) = counts.get_mut(&page) else {
            continue;
        };
        *count -= 1;
        if *count > 0 {
            continue;
        }
        counts.remove(&page);
        if let Some(pointer) = page_pointer(page) {
            // SAFETY: the page held part of `bytes`, a live slice, so it is mapped; munlock only
            // lets it be swapped again (an unlocked page gives an error, which is ignored).
            let _ = unsafe { munlock(pointer, size) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(page: usize) -> usize {
        PAGES.lock().unwrap().get(&page).copied().unwrap_or(0)
    }

    #[test]
    fn pages_stay_locked_while_any_secret_lies_on_them() {
        let size = page_size();
        let buffer = vec![7_u8; 3 * size];
        // Two whole pages inside the buffer, so no other test's secret can lie on them.
        let offset = (size - buffer.as_ptr().addr() % size) % size;
        let first = buffer[offset..].as_ptr().addr();
        // Two secrets on the first page, one of them spilling over onto the second.
        let a = &buffer[offset + 10..offset + 20];
        let b = &buffer[offset + size - 5..offset + size + 5];
        lock(a);
        lock(b);
        assert_eq!((count(first), count(first + size)), (2, 1));
        unlock(a);
        assert_eq!(
            (count(first), count(first + size)),
            (1, 1),
            "b still lies on both"
        );
        unlock(b);
        assert_eq!((count(first), count(first + size)), (0, 0));
    }
}
