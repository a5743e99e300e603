/*
 * The threads home's wake-ups: a client thread queues a request in the
 * server thread's inbox and rings its Doorbell; the server thread answers
 * in the connection's ReplySlot and wakes the client if it parked. The
 * server may close the slot (the connection is cut) at any step.
 *
 * Mirrors (line ranges are of the code this model was written against; see
 * models/README.md for the exact facts it relies on):
 *   hosted/src/threads/wait.rs       Doorbell::ring, Doorbell::sleep_unless_for,
 *       ReplySlot::deliver, close, wake, ready, take
 *   hosted/src/threads/server.rs     Inbox::send, ServerLoop::next
 *   hosted/src/threads/transport.rs  ChannelTransport::call (begin, finish)
 *   libc-shim/src/spin.rs            spin_until, park_unless
 *
 * Memory model: x86-TSO (tso.pml), as in channel_page.pml. A SeqCst store and a swap
 * are locked instructions on x86 (xchg): they drain the store buffer. The
 * inbox (a crossbeam channel) is modelled more weakly than it is: the
 * message becomes visible through an ordinary buffered store, so the model
 * leans on the ring's own fence, not on the channel's internals. The reply
 * packet lives under a Mutex, whose lock and unlock drain the buffer.
 *
 * std's park/unpark: every thread has a token; unpark sets it, park takes
 * it and returns at once if it was set, else sleeps until it is set. A
 * park_timeout may also end early (timeout, spurious) at any time, except
 * under -DLIVENESS.
 */

#define TAGS 3   /* request tags 1..TAGS-1; 0 means "none" */

/* Shared words, indices into mem[]. */
#define QUEUE   0   /* the inbox: the queued request's tag, 0 when empty */
#define ASLEEP  1   /* Doorbell::asleep */
#define FULL    2   /* ReplySlot::full */
#define CLOSED  3   /* ReplySlot::closed */
#define WAITING 4   /* ReplySlot::waiting */
#define NWORDS  5

#define CLIENT 0
#define SERVER 1

#ifdef LIVENESS
#define MAY_TIME_OUT false
#else
#define MAY_TIME_OUT true
#endif

byte mem[NWORDS];
#define MEMORY mem
#include "tso.pml"

byte packet;           /* ReplySlot::packet (under its Mutex): the reply's tag */
bit client_token;      /* the client thread's park token */
bit server_token;      /* the server thread's park token */
bit cut;               /* the server decided to close the connection */

/* A SeqCst store on x86: xchg, which drains the buffer. */
inline store_seqcst(side, w, x) {
    atomic { fence(side) -> mem[w] = x }
}

/* swap(false) on x86: a locked exchange on memory. */
inline swap_false(side, w, old) {
    atomic { fence(side) -> old = mem[w]; mem[w] = 0 }
}

/* std::thread::park_timeout: take the token, or sleep until it is set. */
inline park_timeout(token) {
    if
    :: atomic { token -> token = 0 }
    :: MAY_TIME_OUT -> skip
    fi
}

/* ReplySlot::take's ready (wait.rs 164-166). */
inline slot_ready(side, out) {
    load(side, FULL, v);
    out = v;
    load(side, CLOSED, v);
    out = out || v;
    v = 0
}

/* ReplySlot::wake (wait.rs 142-150). */
inline slot_wake() {
#ifndef M_NO_WAKE_FENCE
    fence(SERVER);
#endif
    load(SERVER, WAITING, v);
    if
    :: v ->
        swap_false(SERVER, WAITING, v);
        if
        :: v -> client_token = 1   /* waiter.unpark() */
        :: else
        fi
    :: else
    fi;
    v = 0
}

/* One client thread calling through ChannelTransport::call, one call at a
 * time, until its connection is closed. */
proctype client() {
    byte tag, v, sbi, got;
    bit ready, old;
    do
    :: tag = tag % (TAGS - 1) + 1;
       /* begin -> send -> Inbox::send (server.rs 71-75): queue, then ring */
#ifndef M_RING_BEFORE_SEND
       store(CLIENT, QUEUE, tag);
#endif
       /* Doorbell::ring (wait.rs 78-87) */
#ifndef M_NO_RING_FENCE
       fence(CLIENT);
#endif
       load(CLIENT, ASLEEP, v);
       if
       :: v ->
           swap_false(CLIENT, ASLEEP, old);
           if
           :: old -> server_token = 1   /* server.unpark() */
           :: else
           fi;
           old = 0
       :: else
       fi;
       v = 0;
#ifdef M_RING_BEFORE_SEND
       store(CLIENT, QUEUE, tag);
#endif
       /* finish -> ReplySlot::take (wait.rs 171-196) */
       if
       :: /* may_spin and a SpinGate permit: spin_until (spin.rs 85-87) */
          slot_ready(CLIENT, ready);
          if
          :: !ready -> slot_ready(CLIENT, ready)
          :: else
          fi
       :: ready = 0   /* the server is on our CPU, or no permit */
       fi;
       if
       :: !ready ->
           do
           :: slot_ready(CLIENT, ready);
              if
              :: ready -> break
              :: else
              fi;
              /* park_unless (spin.rs 111-125) */
              store_seqcst(CLIENT, WAITING, 1);
              fence(CLIENT);
              slot_ready(CLIENT, ready);
              if
              :: !ready -> park_timeout(client_token)
              :: else
              fi
           od;
           store(CLIENT, WAITING, 0)
       :: else
       fi;
       ready = 0;
       load(CLIENT, FULL, v);
       if
       :: v ->
           atomic { fence(CLIENT) -> got = packet; packet = 0 };
           store(CLIENT, FULL, 0);
           v = 0;
           if
           :: got != 0 ->
               assert(got == tag);   /* the reply is this call's */
               got = 0
           :: else -> goto enotconn
           fi
       :: else -> goto enotconn
       fi;
progress_reply:
       skip
    od;
enotconn:
    /* ENOTCONN: only ever once the server closed the slot */
    assert(cut);
    skip
}

/* The server thread: ServerLoop::next (server.rs 106-128), then the answer
 * (ReplySlot::deliver, wait.rs 123-134). */
proctype server() {
    byte tag, v, sbi;
    bit ready, closed;
end_next:
    do
    :: /* queue.try_recv(): a locked pop on the inbox */
       atomic { fence(SERVER) -> tag = mem[QUEUE]; mem[QUEUE] = 0 };
       if
       :: tag != 0 ->
           if
           :: !closed ->
               /* deliver (wait.rs 123-134): the packet under the lock, then full */
#ifndef M_FULL_BEFORE_PACKET
               atomic { fence(SERVER) -> assert(packet == 0); packet = tag };
               store(SERVER, FULL, 1);
#else
               store(SERVER, FULL, 1);
               atomic { fence(SERVER) -> assert(packet == 0); packet = tag };
#endif
               slot_wake()
           :: else   /* a closed connection's frames are dropped */
           fi;
           tag = 0
       :: else ->
           /* spin_until (may_spin; spin.rs 85-87) */
           load(SERVER, QUEUE, v);
           if
           :: v != 0 -> v = 0
           :: else ->
               /* Doorbell::sleep_unless_for (wait.rs 97-104) */
               store_seqcst(SERVER, ASLEEP, 1);
               fence(SERVER);
#ifndef M_NO_SLEEP_RECHECK
               load(SERVER, QUEUE, v);
               ready = (v != 0);
               v = 0;
#else
               ready = 0;
#endif
               if
               :: !ready ->
end_park:          park_timeout(server_token)
               :: else
               fi;
               ready = 0;
               store(SERVER, ASLEEP, 0)
           fi
       fi
    :: !closed && !cut ->
       /* the connection is cut: ReplySlot::close (wait.rs 137-140) */
       cut = 1;
       closed = 1;
       store(SERVER, CLOSED, 1);
       slot_wake()
    od
}

init {
    atomic {
        run memory(CLIENT);
        run memory(SERVER);
        run client();
        run server()
    }
}
