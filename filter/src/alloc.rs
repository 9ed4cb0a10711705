//! Free lists of small blocks in front of the default allocator.
//!
//! Why: a request makes and drops a few dozen small allocations (the parsed
//! claims, decoded token parts, header values, the buffers the host writes
//! into), and on wasm32 each one goes through dlmalloc, which profiled at
//! about a quarter of the module's own time for a new token in V8. Blocks of
//! up to [`MAX_SMALL`] bytes are instead kept, once freed, on a list per size
//! class and handed out again in a few instructions.
//!
//! Bounded: a class keeps at most [`CACHE_BYTES_PER_CLASS`] bytes of free
//! blocks and gives the rest back, so at most 64 x 32 KiB = 2 MiB can sit
//! idle on the lists. Larger or over-aligned requests go straight through.
//!
//! Only sound where one thread uses it, as in a proxy-wasm VM (wasm32 has no
//! threads here): the lists are not locked. The module registers it as the
//! global allocator only on wasm32 without the `atomics` feature.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Size-class granule: also the alignment every small block gets.
const GRANULE: usize = 16;
/// Largest size served from the lists.
pub const MAX_SMALL: usize = 1024;
const CLASSES: usize = MAX_SMALL / GRANULE;
/// Free bytes a class may hold before it returns blocks to the allocator below.
pub const CACHE_BYTES_PER_CLASS: usize = 32 * 1024;

#[derive(Clone, Copy)]
struct FreeList {
    head: *mut u8,
    len: usize,
}

/// The allocator: `inner` for everything the lists do not serve.
pub struct SmallBlocks<A> {
    inner: A,
    lists: UnsafeCell<[FreeList; CLASSES]>,
}

// SAFETY: see the module doc: used from one thread only (a wasm32 VM without
// threads); the global registration in lib.rs is gated on exactly that.
unsafe impl<A: Sync> Sync for SmallBlocks<A> {}

/// The class of a layout the lists serve, if any.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > GRANULE || layout.size() > MAX_SMALL {
        return None;
    }
    Some(layout.size().max(1).div_ceil(GRANULE) - 1)
}

/// The layout of every block of a class, as the allocator below sees it.
fn class_layout(class: usize) -> Option<Layout> {
    Layout::from_size_align((class + 1) * GRANULE, GRANULE).ok()
}

impl<A: GlobalAlloc> SmallBlocks<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        SmallBlocks {
            inner,
            lists: UnsafeCell::new(
                [FreeList {
                    head: ptr::null_mut(),
                    len: 0,
                }; CLASSES],
            ),
        }
    }

    /// Free blocks currently held, over all classes.
    #[cfg(test)]
    fn cached_blocks(&self) -> usize {
        // SAFETY: single-threaded (module doc); no list is being changed now.
        unsafe { (*self.lists.get()).iter().map(|l| l.len).sum() }
    }

    /// SAFETY: single-threaded use; `class < CLASSES`.
    unsafe fn pop(&self, class: usize) -> *mut u8 {
        let Some(list) = (*self.lists.get()).get_mut(class) else {
            return ptr::null_mut();
        };
        let block = list.head;
        if !block.is_null() {
            // A free block's first word is the next free block.
            list.head = block.cast::<*mut u8>().read();
            list.len -= 1;
        }
        block
    }

    /// SAFETY: single-threaded use; `block` is a block of `class` no longer in use.
    unsafe fn push(&self, class: usize, block: *mut u8) -> bool {
        let Some(list) = (*self.lists.get()).get_mut(class) else {
            return false;
        };
        if (list.len + 1) * (class + 1) * GRANULE > CACHE_BYTES_PER_CLASS {
            return false;
        }
        block.cast::<*mut u8>().write(list.head);
        list.head = block;
        list.len += 1;
        true
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallBlocks<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return self.inner.alloc(layout);
        };
        let block = self.pop(class);
        if !block.is_null() {
            return block;
        }
        match class_layout(class) {
            Some(l) => self.inner.alloc(l),
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return self.inner.dealloc(block, layout);
        };
        if !self.push(class, block) {
            if let Some(l) = class_layout(class) {
                self.inner.dealloc(block, l);
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = match Layout::from_size_align(new_size, layout.align()) {
            Ok(l) => l,
            Err(_) => return ptr::null_mut(),
        };
        match (class_of(layout), class_of(new_layout)) {
            // Still fits its block.
            (Some(a), Some(b)) if a == b => block,
            // Both large: the allocator below may grow in place.
            (None, None) => self.inner.realloc(block, layout, new_size),
            _ => {
                let fresh = self.alloc(new_layout);
                if !fresh.is_null() {
                    ptr::copy_nonoverlapping(block, fresh, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                fresh
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_cover_sizes_up_to_the_limit_and_nothing_over_aligned() {
        assert_eq!(class_of(layout(0, 1)), Some(0));
        assert_eq!(class_of(layout(16, 8)), Some(0));
        assert_eq!(class_of(layout(17, 8)), Some(1));
        assert_eq!(class_of(layout(MAX_SMALL, 16)), Some(CLASSES - 1));
        assert_eq!(class_of(layout(MAX_SMALL + 1, 1)), None);
        assert_eq!(class_of(layout(8, 32)), None);
    }

    #[test]
    fn a_freed_block_is_reused_for_the_same_class() {
        let a = SmallBlocks::new(System);
        unsafe {
            let p = a.alloc(layout(40, 8));
            a.dealloc(p, layout(40, 8));
            assert_eq!(a.cached_blocks(), 1);
            // 33..=48 bytes share a class.
            let q = a.alloc(layout(48, 16));
            assert_eq!(p, q);
            assert_eq!(a.cached_blocks(), 0);
            a.dealloc(q, layout(48, 16));
        }
    }

    #[test]
    fn live_blocks_never_overlap_and_keep_their_bytes() {
        let a = SmallBlocks::new(System);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        unsafe {
            for step in 0..20_000u32 {
                let r = next();
                if r % 3 == 0 && !live.is_empty() {
                    let i = (r as usize / 3) % live.len();
                    let (p, l, fill) = live.swap_remove(i);
                    for off in 0..l.size() {
                        assert_eq!(*p.add(off), fill, "block corrupted");
                    }
                    if r % 2 == 0 {
                        a.dealloc(p, l);
                    } else {
                        // Grow or shrink, within or across classes and to large.
                        let new_size = (next() % 1500) as usize + 1;
                        let q = a.realloc(p, l, new_size);
                        assert!(!q.is_null());
                        let nl = layout(new_size, l.align());
                        for off in 0..l.size().min(new_size) {
                            assert_eq!(*q.add(off), fill, "realloc lost bytes");
                        }
                        let fill = step as u8;
                        ptr::write_bytes(q, fill, new_size);
                        live.push((q, nl, fill));
                    }
                } else {
                    let size = (r >> 8) as usize % 1300 + 1;
                    let align = [1, 8, 16, 64][(r >> 40) as usize % 4];
                    let l = layout(size, align);
                    let p = a.alloc(l);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "misaligned");
                    let fill = step as u8;
                    ptr::write_bytes(p, fill, size);
                    live.push((p, l, fill));
                }
            }
            let mut spans: Vec<(usize, usize)> = live
                .iter()
                .map(|(p, l, _)| (*p as usize, l.size()))
                .collect();
            spans.sort_unstable();
            for w in spans.windows(2) {
                assert!(w[0].0 + w[0].1 <= w[1].0, "live blocks overlap");
            }
            for (p, l, _) in live {
                a.dealloc(p, l);
            }
        }
    }

    #[test]
    fn idle_bytes_per_class_are_bounded() {
        let a = SmallBlocks::new(System);
        let l = layout(MAX_SMALL, 8);
        unsafe {
            let blocks: Vec<*mut u8> = (0..200).map(|_| a.alloc(l)).collect();
            for p in blocks {
                a.dealloc(p, l);
            }
        }
        assert_eq!(a.cached_blocks(), CACHE_BYTES_PER_CLASS / MAX_SMALL);
    }
}
