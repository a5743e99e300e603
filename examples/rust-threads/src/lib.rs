//! An example crate: its tests (`tests/threads_home.rs`) show how to check
//! a program's memory use under no-MMU rules without a daemon, with the
//! threads home (memsrv on a thread, each process a handle). Copy the test
//! into your own crate with `hosted`, `protocol` and `nommu` as
//! dependencies.
