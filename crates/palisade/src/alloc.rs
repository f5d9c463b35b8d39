//! The process's allocator: mimalloc, asked through its plain entry points.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, whatever
//! its alignment. That entry has a fast path only while the size class's page has a free
//! block ready; otherwise (every page refill) it takes a generic path which, for a size
//! whose block is not a power of two (24, 48, 80, ... bytes), over-allocates `size +
//! align - 1` bytes from a larger class and marks the page as holding interior pointers,
//! which every later `mi_free` on that page then pays for. Callgrind counted 12.8k
//! instructions per proxied call in `mi_malloc_aligned` (of it 4.4k in the over-allocating
//! path) and 3.7k in `mi_free` (`bench/instructions`, 2026-12-06 02:11).
//!
//! `mi_malloc` already returns blocks aligned to 16 bytes for any size above 8 and to 8
//! bytes below (MI_MAX_ALIGN_SIZE is 16 on x86-64 and aarch64, so every small size class
//! is a whole number of 16-byte units and pages start 16-aligned), so a request whose
//! alignment that covers goes there; only a larger alignment (none on the hot path) takes
//! the aligned entry.
// One of the modules of the workspace that may use `unsafe` (the others: `serve/sys.rs`,
// `term.rs`; crates/palisade/tests/repo.rs keeps the list).
#![allow(unsafe_code)]
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The allocator; see the module documentation.
pub(crate) struct Mimalloc;

/// Whether `mi_malloc`'s own alignment covers a block of `size` bytes aligned to `align`:
/// 8 bytes always, 16 bytes for blocks of at least 16 bytes.
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= 8 || (align <= 16 && size >= align)
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of
// both entries); `plain` sends a request to `mi_malloc` only when that entry's guaranteed
// alignment covers the layout's, and the aligned entries get the layout's alignment
// otherwise, so each returned block satisfies its layout or is null.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls; a null result is passed on as the trait asks.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`, zeroed by mimalloc.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator (the trait's contract), so by
        // mimalloc.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a live block of this allocator (the trait's contract); the new
        // block keeps the layout's alignment by the same rule as `alloc`, and on failure
        // (null) the old block is left as it was, as the trait asks.
        unsafe {
            if plain(new_size, layout.align()) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every small size and alignment from the plain and the aligned entries
    /// are aligned as their layout asks, keep their bytes through a growing and a
    /// shrinking realloc, and come back zeroed from `alloc_zeroed`.
    #[test]
    fn every_block_is_aligned_as_asked_and_keeps_its_bytes() {
        let a = Mimalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64] {
            for size in 1..=160usize {
                let layout = Layout::from_size_align(size, align).unwrap();
                // several of each, so that the page's free list runs out and refills
                let mut held = Vec::new();
                for round in 0..40u8 {
                    // SAFETY: a non-zero-sized layout; the block is freed below.
                    let p = unsafe { a.alloc(layout) };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    // SAFETY: `p` holds `size` bytes.
                    unsafe { std::ptr::write_bytes(p, round, size) };
                    held.push((p, round));
                }
                for (p, round) in held {
                    // SAFETY: `p` is live with this layout; the new sizes are non-zero.
                    unsafe {
                        let q = a.realloc(p, layout, size * 3);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0);
                        assert!((0..size).all(|i| *q.add(i) == round));
                        let r =
                            a.realloc(q, Layout::from_size_align(size * 3, align).unwrap(), size);
                        assert_eq!(r as usize % align, 0);
                        assert!((0..size).all(|i| *r.add(i) == round));
                        a.dealloc(r, layout);
                    }
                }
                // SAFETY: as above.
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
