//! [`Sys::ReplyReceive`]: a server's answer and its next wait in one trap.

use super::*;

/// Where the server's answers are built.
const OUT: u64 = SERVER_BUF + 0x800;

/// The server answers the `len` bytes at `OUT` on `conn` and waits.
fn reply_receive(w: &mut World, conn: u64, len: u64) -> i64 {
    let args = [conn, OUT, len, SERVER_BUF, MAX_FRAME as u64, NEVER];
    w.sys(0, Sys::ReplyReceive, &args)
}

#[test]
fn a_reply_and_receive_answers_then_waits_and_hands_back_to_the_client() {
    let mut w = World::new();
    let conn = w.connect();
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    w.put(CLIENT_BUF, b"ping");
    w.sys(1, Sys::Call, &[conn, CLIENT_BUF, 4, REPLY_BUF, 64]);
    assert_eq!(w.k.handoff(), Some(0));
    w.put(OUT, b"pong!");
    reply_receive(&mut w, conn, 5);
    assert!(matches!(w.state(0), TaskState::Receive { .. }), "it waits");
    assert_eq!(w.state(1), TaskState::Ready);
    assert_eq!((w.a(1, 0), w.get(REPLY_BUF, 5)), (5, b"pong!".to_vec()));
    assert_eq!(w.k.handoff(), Some(1), "the client runs next");
    // The client's next call is handed straight to the waiting server.
    w.put(CLIENT_BUF, b"again");
    w.sys(1, Sys::Call, &[conn, CLIENT_BUF, 5, REPLY_BUF, 64]);
    assert_eq!(w.state(0), TaskState::Ready);
    assert_eq!(
        (w.a(0, 0) as u64, w.a(0, 1), w.a(0, 2) as u64),
        (conn, 5, Event::Frame as u64)
    );
    assert_eq!(w.get(SERVER_BUF, 5), b"again");
}

#[test]
fn a_reply_and_receive_takes_an_event_already_waiting() {
    let mut w = World::new();
    let conn = w.connect();
    w.put(CLIENT_BUF, b"one");
    assert_eq!(w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 3]), 0);
    w.put(OUT, b"unasked");
    reply_receive(&mut w, conn, 7);
    assert_eq!(w.state(0), TaskState::Ready, "the frame was waiting");
    assert_eq!((w.a(0, 0) as u64, w.a(0, 1)), (conn, 3));
    assert_eq!(w.get(SERVER_BUF, 3), b"one");
    // The unasked frame waits for the client's receive.
    assert_eq!(w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]), 7);
    assert_eq!(w.get(REPLY_BUF, 7), b"unasked");
}

#[test]
fn a_reply_to_a_client_that_is_gone_is_dropped_and_the_receive_goes_on() {
    let mut w = World::new();
    let conn = w.connect();
    assert_eq!(w.sys(1, Sys::Close, &[conn]), 0);
    reply_receive(&mut w, conn, 4);
    assert_eq!(w.state(0), TaskState::Ready);
    assert_eq!(
        (w.a(0, 0) as u64, w.a(0, 2) as u64),
        (conn, Event::Hangup as u64),
        "the hang-up is what is received"
    );
}

#[test]
fn a_reply_the_kernel_cannot_take_fails_before_anything_is_received() {
    let mut w = World::new();
    let conn = w.connect();
    w.put(CLIENT_BUF, b"one");
    assert_eq!(w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 3]), 0);
    let too_long = [
        conn,
        SERVER_BUF,
        MAX_FRAME as u64 + 1,
        SERVER_BUF,
        64,
        NEVER,
    ];
    assert_eq!(
        w.sys(0, Sys::ReplyReceive, &too_long),
        errno(Errno::EMSGSIZE)
    );
    let outside = [conn, 0, 4, SERVER_BUF, 64, NEVER];
    assert_eq!(w.sys(0, Sys::ReplyReceive, &outside), errno(Errno::EFAULT));
    assert_eq!(w.state(0), TaskState::Ready);
    // The frame is still there for the next receive.
    assert_eq!(w.receive(), (conn, 3, Event::Frame as u64));
    // A full queue towards the client: EAGAIN, and still nothing taken.
    let mut queued = 0;
    while w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 4]) == 0 {
        queued += 1;
    }
    assert!(queued > 0);
    assert_eq!(w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 3]), 0);
    assert_eq!(reply_receive(&mut w, conn, 4), errno(Errno::EAGAIN));
    assert_eq!(w.receive(), (conn, 3, Event::Frame as u64));
}
