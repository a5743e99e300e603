/*
 * The page reserve protocol (protocol::reserve, memsrv's reserve.rs, the
 * shim's transport/reserve.rs): a client taking offered pages and posting
 * mmap/munmap entries into the ring, the server applying them, revoking
 * the unused reserve under memory pressure, and a kill of the client at
 * any point followed by the server's release.
 *
 * Pages are bits of a byte (a three-page window). Where a page is:
 *   pool     the allocator's (the server's, not the client's)
 *   held     the reserve's: offered (also in `offered`) or taken by the
 *            client and not applied yet
 *   mapped   a region of the client's address space
 * The client's own view: `taken` (taken, entry not posted yet) and `mine`
 * (local mappings it may unmap).
 *
 * Safety (monitor): no page the client may still use is in the pool; the
 * three places are disjoint; every page is in one of them (or in transit
 * inside one atomic step). Liveness of the cleanup: after a kill and the
 * server's release every page is in the pool again (end assertion).
 *
 * Check:   spin -a reserve.pml && cc -O2 -o pan pan.c && ./pan -m100000
 * Mutants (each must report an assertion violation):
 *   -DMUTANT_REVOKE_LOAD_STORE  revoke reads the mask, then clears it
 *                               (not one swap): a page the client takes
 *                               in between is both taken and pooled
 *   -DMUTANT_NO_ROOM_CHECK      the client posts without checking the
 *                               ring has room: an entry not applied yet
 *                               is overwritten
 *   -DMUTANT_DROP_ON_KILL       the release frees the window but forgets
 *                               held pages the client took and never posted
 */

#define ALL     7
#define RING    2
/* head and tail count modulo 2·RING, as the real ones count modulo 2^32
   (any multiple of RING above it behaves alike) */
#define WRAP    (2 * RING)
#ifdef MUTANT_NO_ROOM_CHECK
#define ROOM    true
#else
#define ROOM    ((head - tail + WRAP) % WRAP < RING)
#endif

byte pool = 0;          /* allocator */
byte held = ALL;        /* reserve (window granted at start) */
byte offered = ALL;     /* the shared free mask */
byte mapped = 0;        /* regions */
bool live = true;       /* give-backs return to the window */

byte taken = 0;         /* client: taken, not posted */
byte mine = 0;          /* client: local mappings */

/* ring: entry = kind * 8 + page bit; kind 1 mmap, 2 munmap */
byte ring[RING];
byte head = 0;          /* client writes */
byte tail = 0;          /* server writes (its own count: never read back) */

bool killed = false;
bool released = false;

inline pick(set, b) {
    if
    :: (set & 1) -> b = 1
    :: (set & 2) -> b = 2
    :: (set & 4) -> b = 4
    fi
}

active proctype client() {
    byte b, cur;
    do
    :: /* mmap: room first, then take a page (compare-and-swap), post */
       (ROOM && offered != 0) ->
       pick(offered, b);
       atomic {
           cur = offered;
           if
           :: (cur & b) -> offered = cur & ~b; taken = taken | b
           :: else -> skip          /* lost the race to a revoke */
           fi
       };
       if
       :: (taken & b) ->
          ring[head % RING] = 8 + b;
          atomic { head = (head + 1) % WRAP; taken = taken & ~b; mine = mine | b }
       :: else -> skip
       fi
    :: /* munmap of a local mapping: post and forget it */
       (ROOM && mine != 0) ->
       pick(mine, b);
       ring[head % RING] = 16 + b;
       atomic { head = (head + 1) % WRAP; mine = mine & ~b }
    od unless { killed }
}

/* Apply one entry, validated as memsrv does (an honest client never
   posts one the server refuses). */
inline apply_one() {
    /* memsrv's state changes under its lock: one step each */
    e = ring[tail % RING];
    b = e & 7;
    if
    :: (e / 8 == 1) ->
       atomic {
           assert((held & b) == b && (offered & b) == 0);
           held = held & ~b;
           mapped = mapped | b
       }
    :: (e / 8 == 2) ->
       atomic {
           assert((mapped & b) == b);
           mapped = mapped & ~b;
           if
           :: live -> held = held | b; offered = offered | b
           :: else -> pool = pool | b
           fi
       }
    fi;
    tail = (tail + 1) % WRAP
}

active proctype server() {
    byte e, b, got;
    do
    :: (tail != head) -> apply_one()
    :: live ->
       /* memory pressure: take every page still offered back */
#ifdef MUTANT_REVOKE_LOAD_STORE
       got = offered & held;
       offered = 0;
#else
       atomic { got = offered & held; offered = 0 };
#endif
       atomic { held = held & ~got; pool = pool | got; live = false }
    :: killed -> break
    od;
    /* The connection is gone: apply what was posted, exit the process
       (its mappings return to the window while it is live), release. */
    do
    :: (tail != head) -> apply_one()
    :: else -> break
    od;
    atomic {
        if
        :: live -> held = held | mapped
        :: else -> pool = pool | mapped
        fi;
        mapped = 0;
#ifdef MUTANT_DROP_ON_KILL
        pool = pool | (held & ~taken);
#else
        pool = pool | held;
#endif
        held = 0;
        offered = 0;
        released = true
    };
    assert(pool == ALL)
}

active proctype kill() {
    killed = true
}

active proctype monitor() {
    /* at every reachable state (spin interleaves this assertion anywhere) */
    assert(((taken | mine) & pool) == 0 || released);
    assert((pool & held) == 0 && (pool & mapped) == 0 && (held & mapped) == 0);
    assert(((offered & ~held) & ALL) == 0 || released);
    assert((pool | held | mapped | mine) == ALL || released)
}
