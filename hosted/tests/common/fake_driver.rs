//! What the hand-faked drivers of the threads home (`driver_faults.rs`) and
//! of the daemon (`driver_process.rs`) share: taking requests and answering
//! them frame by frame, and the lookup answers that must fail a client's
//! `open` the same way in both homes.

use protocol::{DriverReply, DriverRequest, Errno, Frame};
use std::sync::mpsc;
use std::time::Duration;

/// A driver faked by hand on a bare connection to a home.
pub trait FakeDriver {
    /// The next request the server sends, decoded.
    fn next(&self) -> Frame<DriverRequest>;
    /// Answer the request tagged `tag` with `reply`.
    fn answer(&self, tag: u32, reply: &DriverReply);
}

/// A lookup answered with the wrong variant fails the client's `open`
/// `EIO`; an errno is passed on as it is, except the internal `ENOSYS`,
/// which never reaches a client (`EIO`). `open` starts one `open` of the
/// fake's device in the background.
pub fn wrong_lookup_answers_fail_the_open(
    fake: &impl FakeDriver,
    open: impl Fn() -> mpsc::Receiver<Result<i32, Errno>>,
    patience: Duration,
) {
    for wrong in [
        DriverReply::Count(3),
        DriverReply::Address(0x1000),
        DriverReply::Done,
    ] {
        let opened = open();
        let lookup = fake.next();
        fake.answer(lookup.tag, &wrong);
        assert_eq!(
            opened.recv_timeout(patience).unwrap(),
            Err(Errno::EIO),
            "Lookup answered {wrong:?}"
        );
    }
    for (answer, expected) in [(Errno::ENOENT, Errno::ENOENT), (Errno::ENOSYS, Errno::EIO)] {
        let opened = open();
        let lookup = fake.next();
        fake.answer(lookup.tag, &DriverReply::Error(answer));
        assert_eq!(opened.recv_timeout(patience).unwrap(), Err(expected));
    }
}
