//! The `memsrvd` daemon: host processes connect over a Unix socket.
