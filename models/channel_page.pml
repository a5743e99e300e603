/*
 * The channel page protocol between one client connection (libnommu) and
 * its memsrvd connection thread, with a deferred-reply driver thread and a
 * kill (or cut) that may strike at any step.
 *
 * Mirrors (line ranges are of the code this model was written against; see
 * models/README.md for the exact facts it relies on):
 *   libc-shim/src/transport/channel_page.rs  post_request/publish_request,
 *       spin_for_reply, park_for_reply, take_reply (client side);
 *       take_request, spin_for_request, announce_sleep, announce_awake,
 *       post_reply (daemon side)
 *   libc-shim/src/spin.rs                   spin, spin_beside, park_unless
 *   libc-shim/src/transport/connection.rs   channel_round_trip,
 *       await_channel_reply (the park loop and the hang-up check)
 *   libc-shim/src/sys/mod.rs                eventfd_ring/drain, futex_wait/wake
 *   hosted/src/daemon/connection.rs         Session::run, serve_channel,
 *       serve_posted, spin, handle, deliver_outbox, deliver
 *   hosted/src/daemon/registry.rs           Peer::post, Peer::cut
 *   hosted/src/daemon/spin_gate.rs          SpinPermit::try_take
 *
 * Memory model: x86-TSO (tso.pml). Each side's stores go through a FIFO
 * store buffer that drains into the page at any later time; a load
 * sees its own side's newest buffered store first. This is the one
 * reordering x86 does (a store passing a later load), and the one the two
 * SeqCst fences exist for. Release/acquire pairs are kept as program order
 * (TSO keeps store order and load order). System calls (eventfd, futex,
 * poll) are not assumed to drain the buffer.
 *
 * Kernel objects: the doorbell eventfd is a counter (a bit suffices: ring
 * sets it, a read resets it); FUTEX_WAIT compares the word and queues the
 * waiter in one step (the hash-bucket lock), returning at once if the word
 * differs; FUTEX_WAKE dequeues every waiter. Timeouts, EINTR and spurious
 * wake-ups may end any sleep at any time, except under -DLIVENESS, where a
 * sleep ends early only once the peer hung up (that is what the bounds are
 * for): a run that needs a timeout to go on while both sides live is then a
 * hang, which is exactly a lost wake-up.
 *
 * Mutations (each -D makes one known mistake; models/check.sh expects each
 * to fail): see the table in models/README.md.
 */

#ifndef SEQ_MOD
#define SEQ_MOD     3   /* request_seq/reply_seq wrap (u32 wrapping_add) */
#endif
#define SPIN_ROUNDS 2   /* rounds of polling before the budget runs out */

/* The page's words, indices into page[]. */
#define REQUEST        0  /* request slot + request_len: the request frame, named by its tag */
#define REQUEST_SEQ    1
#define CLIENT_WAITING 2
#define REPLY          3  /* reply slot + reply_len: the reply frame, named by its tag */
#define REPLY_SEQ      4
#define DAEMON_ASLEEP  5
#define NWORDS         6

/* The published CPUs (client_cpu, daemon_cpu) are relaxed hints read only
 * by the spin rule; they are kept as plain words. */
#define UNKNOWN_CPU 2
#define same_cpu(a, b) ((a) != UNKNOWN_CPU && (a) == (b))

/* How a spin ended (spin.rs Spin). */
#define READY      1
#define EXPIRED    2
#define SHARED_CPU 3

#define CLIENT 0
#define DAEMON 1

#ifdef LIVENESS
#define MAY_TIME_OUT(peer_gone) (peer_gone)
#else
#define MAY_TIME_OUT(peer_gone) true
#endif

byte page[NWORDS];
#define MEMORY page
#include "tso.pml"

byte client_cpu, daemon_cpu;

/* Kernel state. */
bit doorbell;       /* the connection's eventfd counter is non-zero */
bit futex_queued;   /* the client thread sleeps in FUTEX_WAIT on reply_seq */
bit client_hup;     /* the daemon's socket end reports a hang-up */
bit daemon_hup;     /* the client's socket end reports a hang-up */
bit dropped;        /* Peer::dropped (the connection was cut) */
bit killed;         /* the client process was killed */

/* Another daemon thread answering a deferred request: `deferred` is the
 * tag it owes an answer to (0: none), `outbox` the Peer's outbox (0:
 * empty, else the reply's tag). Tags are 1..SEQ_MOD-1 and 0, so they are
 * stored plus one. */
byte deferred, outbox;

/* Ghosts for the properties. */
byte served;        /* tag of the last request the daemon handed to memsrv */

/* The CPU a thread finds itself on (sys::current_cpu); the scheduler may
 * move it at any time. Two CPUs; UNKNOWN_CPU (never "the same") behaves as
 * two different CPUs do, so it is not drawn. */
inline current_cpu(cpu) {
    if
    :: cpu = 0
    :: cpu = 1
    fi
}

/* spin.rs spin + spin_beside (58-105): poll `ready` a round at a time; after
 * each round publish our CPU and stop if the peer's is ours; after the
 * budget, one last look. A round's many polls are one load here: each load
 * may already see any later state. */
inline spin_beside(side, w, ready, mine, theirs, outcome) {
    current_cpu(mine);
    rounds = 0;
    do
    :: load(side, w, v);
       if
       :: ready -> outcome = READY; break
       :: else
       fi;
       current_cpu(mine);
       if
       :: same_cpu(mine, theirs) -> outcome = SHARED_CPU; break
       :: else
       fi;
       rounds++;
       if
       :: rounds == SPIN_ROUNDS ->
           load(side, w, v);
           if
           :: ready -> outcome = READY
           :: else -> outcome = EXPIRED
           fi;
           break
       :: else
       fi
    od;
    rounds = 0;
    v = 0
}

/* spin.rs park_unless (111-125), the sleeper's half up to the sleep:
 * announce (set `flag`), fence, one more look at `w`; `arrived` says
 * whether `ready` held (then the caller does not sleep). */
inline park_unless(side, flag, w, ready, arrived) {
    store(side, flag, 1);
#ifndef M_NO_PARK_FENCE
    fence(side);
#endif
    load(side, w, v);
    arrived = (ready)
}


/* channel_page.rs post_reply (333-346). */
inline post_reply(seq, tag) {
#ifndef M_REPLY_SEQ_BEFORE_FRAME
    store(DAEMON, REPLY, tag);
#endif
    current_cpu(daemon_cpu);
    store(DAEMON, REPLY_SEQ, seq);
#ifdef M_REPLY_SEQ_BEFORE_FRAME
    store(DAEMON, REPLY, tag);
#endif
#ifndef M_NO_REPLY_FENCE
    fence(DAEMON);
#endif
    load(DAEMON, CLIENT_WAITING, v);
    if
    :: v != 0 -> futex_queued = 0   /* futex_wake: every waiter */
    :: else
    fi;
    v = 0
}

/* The client: one thread calling through DaemonConnection::call ->
 * channel_round_trip (transport/connection.rs 394-405, 363-375), one call at
 * a time (the connection's lock), forever or until killed. exchange
 * (409-449) takes the same steps with read_reply for take_reply. */
proctype client() {
    byte call;   /* the tag of the current call, which names its frame */
    byte seq, seen, v, sbi, rounds, outcome;
    bit wake, arrived;
    {
    do
    :: call = (call + 1) % SEQ_MOD;
       /* post_request (channel_page.rs 163-168): store_frame, then
        * publish_request (197-213). */
#ifndef M_SEQ_BEFORE_FRAME
       store(CLIENT, REQUEST, call);
#endif
       current_cpu(client_cpu);
       load(CLIENT, REQUEST_SEQ, seq);
       seq = (seq + 1) % SEQ_MOD;
       store(CLIENT, REQUEST_SEQ, seq);
#ifdef M_SEQ_BEFORE_FRAME
       store(CLIENT, REQUEST, call);
#endif
#ifndef M_NO_POST_FENCE
       fence(CLIENT);
#endif
       load(CLIENT, DAEMON_ASLEEP, v);
       wake = (v != 0);
       v = 0;
       /* await_channel_reply (transport/connection.rs 378-390) */
       if
       :: wake -> doorbell = 1   /* eventfd_ring */
       :: else
       fi;
       wake = 0;
       /* spin_for_reply (channel_page.rs 216-224) */
       spin_beside(CLIENT, REPLY_SEQ, v == seq, client_cpu, daemon_cpu, outcome);
       if
       :: outcome != READY ->
           do
           :: /* park_for_reply (channel_page.rs 230-246) */
#ifndef M_NO_CLIENT_RECHECK
              park_unless(CLIENT, CLIENT_WAITING, REPLY_SEQ, v == seq, arrived);
              seen = v;
              v = 0;
#else
              store(CLIENT, CLIENT_WAITING, 1);
              seen = seq;
              arrived = 0;
#endif
              if
              :: !arrived ->
                  /* futex_wait(reply_seq, seen, PARK_SLICE) (sys/mod.rs 191-207) */
                  atomic {
                      if
                      :: page[REPLY_SEQ] != seen -> skip   /* EAGAIN */
                      :: else -> futex_queued = 1
                      fi
                  };
                  if
                  :: futex_queued == 0                        /* woken */
                  :: MAY_TIME_OUT(daemon_hup) -> futex_queued = 0  /* timeout, EINTR, spurious */
                  fi
              :: else
              fi;
              seen = 0;
              arrived = 0;
              load(CLIENT, REPLY_SEQ, v);
              if
              :: v == seq ->
                  v = 0;
                  store(CLIENT, CLIENT_WAITING, 0);
                  break
              :: else ->
#ifndef M_NO_HUP_CHECK
                  /* transport/connection.rs 384-386: socket.hung_up() -> ENOTCONN */
                  if
                  :: daemon_hup -> goto enotconn
                  :: else
                  fi
#else
                  skip
#endif
              fi
           od
       :: else
       fi;
       /* take_reply (channel_page.rs 250-259) */
       store(CLIENT, CLIENT_WAITING, 0);
       load(CLIENT, REPLY, v);
       assert(v == call);   /* a reply is never matched to the wrong request */
       v = 0;
       seq = 0;
       outcome = 0;
progress_reply:
       skip
    od;
enotconn:
    skip
    } unless { killed }
}

/* The daemon's connection thread (hosted/src/daemon/connection.rs; the
 * line numbers in this proctype are that file's unless named otherwise). The
 * handshake over the socket is done: the session is welcomed. */
proctype daemon() {
    byte last_seq, seq, tag, v, sbi, rounds, outcome;
    bit spinning, arrived, rev_door, rev_hup;
    bit waiting; byte wait_tag, wait_seq;   /* Session::waiting */

    /* Session::run (145-181) */
top:
    if
    :: dropped -> goto gone   /* while open && !is_cut */
    :: else -> outcome = 0
    fi;
    /* serve_channel (186-195) -> take_request (channel_page.rs 284-296) */
    load(DAEMON, REQUEST_SEQ, seq);
    if
    :: seq != last_seq ->
        load(DAEMON, REQUEST, tag);
        /* serve_posted, Posted::Frame (209-214) */
#ifndef M_STALE_LAST_SEQ
        last_seq = seq;
#endif
        spinning = 1;
        /* handle (341-357): memsrv gets each request once, in order */
        assert(tag == (served + 1) % SEQ_MOD);
        served = tag;
        waiting = 1; wait_tag = tag; wait_seq = seq;
        tag = 0; seq = 0;
        if
        :: /* answered at once: deliver (372-382) */
           waiting = 0;
           post_reply(wait_seq, wait_tag);
           wait_tag = 0; wait_seq = 0
        :: /* deferred: another thread answers later */
           deferred = wait_tag + 1
        fi;
        goto top
    :: else -> seq = 0
    fi;
    /* serve_posted, None (200-208) */
    if
    :: spinning ->
        /* Session::spin (228-245) */
        if
        :: skip                  /* no SpinPermit free */
        :: /* spin_for_request (channel_page.rs 299-307) */
           spin_beside(DAEMON, REQUEST_SEQ, v != last_seq, daemon_cpu, client_cpu, outcome);
           if
           :: outcome == READY -> goto top
           :: outcome == SHARED_CPU ->
               if
               :: skip           /* moved within MOVE_INTERVAL, or move_off failed */
               :: /* moved off the client's CPU: spin there */
                  spin_beside(DAEMON, REQUEST_SEQ, v != last_seq, daemon_cpu, client_cpu, outcome);
                  if
                  :: outcome == READY -> goto top
                  :: else
                  fi
               fi
           :: else
           fi
        fi
    :: else
    fi;
    /* announce_sleep (channel_page.rs 312-324) */
#ifndef M_NO_RECHECK
    park_unless(DAEMON, DAEMON_ASLEEP, REQUEST_SEQ, v != last_seq, arrived);
#else
    store(DAEMON, DAEMON_ASLEEP, 1);
    arrived = 0;
#endif
    v = 0;
    outcome = 0;
    if
    :: arrived ->
        arrived = 0;
        store(DAEMON, DAEMON_ASLEEP, 0);
        goto top
    :: else -> spinning = 0
    fi;
    /* poll on the socket and the doorbell, IDLE_POLL_MS (151-163); revents
     * are what held when poll returned */
    if
    :: atomic { doorbell || client_hup -> rev_door = doorbell; rev_hup = client_hup }
    :: atomic { MAY_TIME_OUT(client_hup) -> rev_door = doorbell; rev_hup = client_hup }
    fi;
    store(DAEMON, DAEMON_ASLEEP, 0);   /* announce_awake (channel_page.rs 327-329) */
#ifndef M_DRAIN_AFTER_OUTBOX
    if
    :: rev_door -> doorbell = 0        /* eventfd_drain */
    :: else
    fi;
#endif
    /* deliver_outbox (361-368) -> deliver (372-382) */
    atomic { tag = outbox; outbox = 0 };
    if
    :: tag != 0 ->
        assert(waiting && tag - 1 == wait_tag);   /* it goes to the channel */
        waiting = 0;
        post_reply(wait_seq, wait_tag);
        wait_tag = 0; wait_seq = 0
    :: else
    fi;
    tag = 0;
#ifdef M_DRAIN_AFTER_OUTBOX
    if
    :: rev_door -> doorbell = 0
    :: else
    fi;
#endif
    rev_door = 0;
    if
    :: rev_hup ->
#ifndef M_IGNORE_HUP
        goto gone
#else
        skip
#endif
    :: else
    fi;
    rev_hup = 0;
    goto top;
gone:
    /* serve returns: the Peer and its socket are dropped */
    daemon_hup = 1
}

/* The thread that answers a deferred request: Peer::post (registry.rs
 * 29-32), queue then ring. */
proctype driver() {
    byte tag;
end:
    do
    :: atomic { deferred != 0 -> tag = deferred; deferred = 0 };
       atomic { outbox == 0 -> outbox = tag };
       tag = 0;
       doorbell = 1
    od
}

/* What may end the connection from outside: the client process is killed
 * (the kernel closes its socket: the daemon's end hangs up), or the daemon
 * cuts it (Peer::cut, registry.rs 43-47: flag, shutdown both ways, ring). */
active proctype fate() {
    if
    :: atomic { killed = 1; client_hup = 1 }
    :: dropped = 1; atomic { client_hup = 1; daemon_hup = 1 }; doorbell = 1
    :: skip
    fi
}

init {
    atomic {
        client_cpu = 0;   /* the page starts zeroed */
        daemon_cpu = 0;
        run memory(CLIENT);
        run memory(DAEMON);
        run client();
        run daemon();
        run driver()
    }
}
