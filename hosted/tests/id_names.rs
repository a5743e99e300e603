//! `memsrvd`'s user and group arguments: a number stands for itself, a
//! name is looked up (`getpwnam_r`/`getgrnam_r`), an unknown name is none.

use hosted::daemon::options::{group_id, user_id};

#[test]
fn numbers_and_names_give_ids() {
    assert_eq!(user_id("4242"), Some(4242));
    assert_eq!(group_id("4242"), Some(4242));
    // Every Linux system has root as user and group 0.
    assert_eq!(user_id("root"), Some(0));
    assert_eq!(group_id("root"), Some(0));
    assert_eq!(user_id("no-such-user-here"), None);
    assert_eq!(group_id("no-such-group-here"), None);
    assert_eq!(user_id("nul\0inside"), None);
}
