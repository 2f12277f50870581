//! Pinning (issue 17): the server child on the last core, this process (the load generator and
//! the in-process baselines) on the others, with `taskset`, so a tail measured is the server's
//! and not a request that waited for the generator to be scheduled.

use std::process::Command;
use std::sync::OnceLock;

/// The core the server runs on, or `None` when pinning is off, there is one core, or `taskset`
/// is missing. The first call also pins this process (every thread) to the other cores.
pub fn server_core(no_pin: bool) -> Option<usize> {
    static PINNED: OnceLock<Option<usize>> = OnceLock::new();
    if no_pin {
        return None;
    }
    *PINNED.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        let server = cores - 1;
        let others = if server == 1 {
            "0".to_string()
        } else {
            format!("0-{}", server - 1)
        };
        let pinned = Command::new("taskset")
            .args(["-a", "-p", "-c", &others, &std::process::id().to_string()])
            .output()
            .is_ok_and(|o| o.status.success());
        if !pinned {
            eprintln!("  taskset failed: server and load generator share every core");
        }
        pinned.then_some(server)
    })
}
