//! The allocator's settings for a server process (`quando serve`, and the bench's server child,
//! which runs the same stack).

/// Caps glibc's malloc at two arenas. glibc gives each thread that finds the arenas busy an arena
/// of its own, up to eight per core, and memory freed into one arena serves only the threads
/// using it. The server's threads (the tokio workers, one thread per SQLite connection, the
/// blocking pool) each kept a partly empty heap of their own. Measured on SQLite with the
/// bench's create load (`quando-bench suite --events 50000 --calendars 50 --seconds 5
/// --workloads create,create-idempotent`, two runs each, 2026-12-03): peak RSS 53.5 / 55.3 MB
/// with glibc's default, 50.0 / 49.3 MB with two arenas, create 725 / 991 against 876 / 833
/// req/s (inside the disk's spread); at 1,000,000 events (`MALLOC_ARENA_MAX=2`, one run each)
/// 51.2 against 47.5 MB. Call it first in `main`, before any thread starts. Elsewhere than on
/// glibc it does nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes the allocator's tuning parameters; glibc allows calling it
    // at any time, and it is called before the process starts a second thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
