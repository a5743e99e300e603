//! What the command-line tools share.

/// Let a closed standard output (`nommu-ctl maps | head`) end the tool
/// quietly, as it ends a C tool, instead of a panic in `println!`: Rust
/// starts programs with SIGPIPE ignored.
pub fn exit_quietly_on_closed_stdout() {
    // SAFETY: restoring the default disposition of one signal, before any
    // thread is started, touches no memory of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
