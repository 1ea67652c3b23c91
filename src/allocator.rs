//! How the process's memory allocator is set up, before anything else runs.
//!
//! glibc's malloc gives each thread that allocates its own arena, up to
//! eight per core. nudged's threads (the runtime's workers, one per SQLite
//! connection, the blocking pool) each take one, and each arena keeps the
//! memory freed into it: a fan-out to 10,000 people ended at 17 MiB of heap
//! pages with the default and 11 MiB with one arena, while the heap in use
//! was 8 MiB either way. Two arenas keep that saving and let two threads
//! allocate at once, which is what two cores can use. See ARCHITECTURE.md,
//! "Memory".
//!
//! Written by hand: `mallopt` is one call, and no crate wraps it safely.

/// The most arenas glibc's malloc keeps, unless `MALLOC_ARENA_MAX` says.
pub const ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`ARENAS`], unless the operator set
/// `MALLOC_ARENA_MAX` (which glibc reads itself). Call it first in `main`,
/// while the process has one thread. Elsewhere than glibc, does nothing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of the allocator; glibc
        // allows it at any time, and with one thread nothing allocates
        // meanwhile.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
