//! Zeroed, page-aligned tables from `mmap`, on transparent huge pages when large.
//!
//! First touch of a fresh 4 KiB page costs ~8–13 µs on the machine this was built
//! on, so a table that grows by rebuilding would spend most of its time in page
//! faults. A 2 MiB-aligned anonymous mapping advised `MADV_HUGEPAGE` faults in
//! 2 MiB at a time instead: 512× fewer faults and fewer TLB misses on lookups.
//! The kernel hands the pages out zeroed, so no memset is needed either.
//! Mappings are populated in one call (`MADV_POPULATE_WRITE`) rather than by a
//! trap per page. Below 64 KiB the global allocator is used instead.

use std::marker::PhantomData;
use std::ptr::NonNull;

const HUGE: usize = 2 << 20;
/// From this size on, [`HugeBuf::whole_pages`] rounds lengths to whole huge pages.
const WHOLE_FROM: usize = 4 * HUGE;
/// Below this, tables come from the global allocator.
const MAP_MIN: usize = 64 << 10;
/// `MADV_POPULATE_WRITE` (Linux 5.14): fault the whole range in one call.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Types whose all-zero bytes are a valid value: what a [`HugeBuf`] holds before
/// anything is written, since its memory comes zeroed from the kernel or from
/// `alloc_zeroed`. Plain integers, arrays of them, and the crate's tables' cells.
/// Crate-private: the bound is what makes [`HugeBuf::zeroed`] sound, so no type
/// outside the crate can claim it.
///
/// # Safety
///
/// All-zero bytes must be a valid `Self` (not so for references, `NonZero*`,
/// most enums).
pub(crate) unsafe trait Zeroable: Copy {}

macro_rules! zeroable {
    ($($t:ty),*) => { $(
        // SAFETY: every bit pattern is a valid integer.
        unsafe impl Zeroable for $t {}
    )* };
}
zeroable!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
// SAFETY: an array of zeroed valid elements is valid.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}
// SAFETY: no bytes at all.
unsafe impl Zeroable for () {}

/// A fixed-length, zero-initialised buffer of `T`.
pub(crate) struct HugeBuf<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    /// The mapping (huge) or null (from the global allocator).
    map: *mut libc::c_void,
    map_len: usize,
    _own: PhantomData<T>,
}

// SAFETY: HugeBuf owns its mapping exclusively, like a Box<[T]>.
unsafe impl<T: Zeroable + Send> Send for HugeBuf<T> {}
// SAFETY: shared access only reads.
unsafe impl<T: Zeroable + Sync> Sync for HugeBuf<T> {}

impl<T: Zeroable> HugeBuf<T> {
    /// `len` zeroed elements. Panics if memory cannot be mapped (as `Vec` does).
    pub fn zeroed(len: usize) -> HugeBuf<T> {
        let len = len.max(1);
        let bytes = len.checked_mul(std::mem::size_of::<T>()).expect("table size overflow");
        if bytes == 0 {
            // A zero-sized `T`: nothing to allocate (and a zero-size layout must
            // not be passed to the allocator).
            let (ptr, map) = (NonNull::dangling(), std::ptr::null_mut());
            return HugeBuf { ptr, len, map, map_len: 0, _own: PhantomData };
        }
        if bytes < MAP_MIN {
            let layout = Self::layout(len);
            // SAFETY: the layout has a non-zero size (bytes > 0 above).
            let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
            let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            return HugeBuf { ptr, len, map: std::ptr::null_mut(), map_len: 0, _own: PhantomData };
        }
        let span = bytes.next_multiple_of(4096);
        let map =
            map_range(span, 0).unwrap_or_else(|| panic!("out of memory mapping {bytes} bytes"));
        populate(map, span, 0);
        HugeBuf {
            ptr: NonNull::new(map as *mut T).expect("mmap returned null"),
            len,
            map,
            map_len: span,
            _own: PhantomData,
        }
    }

    /// Lengthens the buffer to `new_len` elements: the first `len()` keep their
    /// values, the rest are zero. A mapped buffer is moved with `mremap`, which
    /// keeps its (huge) pages instead of copying them, so only the new tail is
    /// faulted in and the old and new tables are never both resident.
    pub fn grow(&mut self, new_len: usize) {
        assert!(new_len >= self.len);
        let size = std::mem::size_of::<T>();
        let new_bytes = new_len.checked_mul(size).expect("table size overflow");
        if size == 0 || (!self.map.is_null() && self.remap(new_bytes)) {
            self.len = new_len;
            return;
        }
        let mut fresh = HugeBuf::zeroed(new_len);
        fresh[..self.len].copy_from_slice(self);
        *self = fresh;
    }

    /// Moves the mapping's pages to a fresh (2 MiB-aligned when large) range of
    /// `new_bytes` and faults in the tail; false (mapping untouched) when it cannot.
    fn remap(&mut self, new_bytes: usize) -> bool {
        let new_span = new_bytes.next_multiple_of(4096);
        if self.map_len < WHOLE_FROM && new_span >= WHOLE_FROM {
            // Pages moved from a buffer not yet sized in whole huge pages may be
            // small ones, which stay small: copy into a fresh mapping instead.
            return false;
        }
        // A placeholder whose pages `mremap` (MREMAP_FIXED) replaces: no memory is
        // committed for it.
        let Some(dst) = map_range(new_span, libc::MAP_NORESERVE) else {
            return false;
        };
        // SAFETY: moves our own mapping onto the placeholder, which it replaces
        // whole; on failure the placeholder is unmapped and ours is untouched.
        unsafe {
            let moved = libc::mremap(
                self.map,
                self.map_len,
                new_span,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                dst,
            );
            if moved == libc::MAP_FAILED {
                libc::munmap(dst, new_span);
                return false;
            }
            populate(moved, new_span, self.map_len);
            self.ptr = NonNull::new(moved as *mut T).expect("mremap returned null");
            self.map = moved;
            self.map_len = new_span;
        }
        true
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<T>(len)
            .expect("table size overflow")
            .align_to(64)
            .expect("align")
    }

    /// The length nearest `len` elements that fills whole huge pages, once `len`
    /// elements span [`WHOLE_FROM`] bytes (`len` itself below that): a buffer
    /// grown through such lengths only ever gets whole, aligned 2 MiB tails, which
    /// the kernel backs with huge pages (a tail that begins inside a huge page is
    /// faulted in as small pages, and stays so).
    pub fn whole_pages(len: usize) -> usize {
        let size = std::mem::size_of::<T>();
        match len.checked_mul(size) {
            Some(bytes) if bytes >= WHOLE_FROM && HUGE.is_multiple_of(size) => {
                (bytes + HUGE / 2) / HUGE * HUGE / size
            }
            _ => len,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// Maps `span` bytes (a multiple of 4 KiB) of anonymous memory, 2 MiB-aligned
/// when at least 2 MiB (over-mapped by one huge page, the ends unmapped again), so
/// that exactly the range is mapped; `None` if the kernel refuses.
fn map_range(span: usize, flags: libc::c_int) -> Option<*mut libc::c_void> {
    let slack = if span >= HUGE { HUGE } else { 0 };
    // SAFETY: an anonymous private mapping with no address hint.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span + slack,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return None;
    }
    let start = (map as usize).next_multiple_of(if slack > 0 { HUGE } else { 1 });
    Some(trim(map, span + slack, start, span).0)
}

/// Advises huge pages on the mapping `[start, start + span)` when it is large, and
/// faults in `[start + from, start + span)` in one call rather than by a trap per
/// page (8–13 µs each on the VM this was measured on); both fail harmlessly on
/// kernels without them.
fn populate(start: *mut libc::c_void, span: usize, from: usize) {
    // SAFETY: advice on a range inside a mapping we own.
    unsafe {
        if span >= HUGE {
            libc::madvise(start, span, libc::MADV_HUGEPAGE);
        }
        libc::madvise(
            (start as usize + from) as *mut libc::c_void,
            span - from,
            MADV_POPULATE_WRITE,
        );
    }
}

/// Unmaps the parts of the mapping `[map, map + map_len)` outside `[start, start +
/// len)`; returns the kept range.
fn trim(
    map: *mut libc::c_void,
    map_len: usize,
    start: usize,
    len: usize,
) -> (*mut libc::c_void, usize) {
    let (lo, hi) = (map as usize, map as usize + map_len);
    // SAFETY: both ranges lie inside the mapping and outside the kept range.
    unsafe {
        if start > lo {
            libc::munmap(map, start - lo);
        }
        if hi > start + len {
            libc::munmap((start + len) as *mut libc::c_void, hi - start - len);
        }
    }
    (start as *mut libc::c_void, len)
}

/// Asks the CPU to bring the cache line holding `r` closer: tables are looked up
/// in batches, and issuing the loads of later keys early overlaps their misses.
#[inline]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint, and `r` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch(r as *const T as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

impl<T: Zeroable> std::ops::Deref for HugeBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` elements, zero-initialised (valid: `T: Zeroable`) or written since.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> std::ops::DerefMut for HugeBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, and we own the mapping exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for HugeBuf<T> {
    fn drop(&mut self) {
        if std::mem::size_of::<T>() == 0 {
            // Nothing was allocated.
        } else if self.map.is_null() {
            // SAFETY: allocated in `zeroed` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(self.len)) }
        } else {
            // SAFETY: unmapping exactly what `zeroed` mapped.
            unsafe {
                libc::munmap(self.map, self.map_len);
            }
        }
    }
}

impl<T: Zeroable> Clone for HugeBuf<T> {
    fn clone(&self) -> Self {
        let mut b = HugeBuf::zeroed(self.len);
        b.copy_from_slice(self);
        b
    }
}

impl<T: Zeroable + PartialEq> PartialEq for HugeBuf<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Zeroable + std::fmt::Debug> std::fmt::Debug for HugeBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBuf").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_writable() {
        for n in [1usize, 1000, (3 << 20) / 16] {
            let mut b: HugeBuf<u128> = HugeBuf::zeroed(n);
            assert_eq!(b.len(), n);
            assert!(b.iter().all(|&v| v == 0));
            b[n - 1] = 7;
            assert_eq!(b[n - 1], 7);
            if n * 16 >= HUGE + HUGE / 2 {
                assert_eq!(b.as_ptr() as usize % HUGE, 0);
            }
        }
    }

    /// A zero-sized element allocates nothing, and grows and drops without
    /// touching the allocator (a zero-size layout would be undefined behaviour).
    #[test]
    fn zero_sized_elements() {
        let mut b: HugeBuf<()> = HugeBuf::zeroed(1 << 40);
        assert_eq!(b.len(), 1 << 40);
        b.grow(1 << 41);
        assert_eq!((b.len(), b[(1 << 41) - 1]), (1 << 41, ()));
        let b: HugeBuf<[u64; 0]> = HugeBuf::zeroed(5);
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn grow_keeps_the_values_and_zeroes_the_rest() {
        // From the global allocator, to a small mapping, to huge pages and beyond.
        let value = |i: usize| i as u128 * 3 + 1;
        let mut b: HugeBuf<u128> = HugeBuf::zeroed(3);
        let mut n = 3;
        for new_n in [100, 5_000, 70_000, 300_000, 450_001] {
            for (i, v) in b.iter_mut().enumerate() {
                *v = value(i);
            }
            b.grow(new_n);
            assert_eq!(b.len(), new_n);
            assert!(b[..n].iter().enumerate().all(|(i, &v)| v == value(i)));
            assert!(b[n..].iter().all(|&v| v == 0));
            if new_n * 16 >= HUGE {
                assert_eq!(b.as_ptr() as usize % HUGE, 0);
            }
            n = new_n;
        }
    }
}
