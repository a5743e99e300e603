/*
 * x86-TSO memory for the models: one FIFO store buffer per side (CLIENT
 * and DAEMON/SERVER, 0 and 1), drained into MEMORY (the including model's
 * array of shared words) by a `memory` process per side, oldest store
 * first, at any later time. A load sees its side's newest buffered store to
 * the word, else memory. That is the one reordering x86 does: a store
 * passing a later load.
 *
 * The including model defines MEMORY and runs memory(0) and memory(1);
 * every process that loads declares a `byte sbi` scratch index.
 */

#define SB 3   /* store buffer entries; a store waits while it is full */

typedef StoreBuffer { byte word[SB]; byte value[SB]; byte n };
StoreBuffer sb[2];

inline store(side, w, x) {
    atomic {
        sb[side].n < SB ->
        sb[side].word[sb[side].n] = w;
        sb[side].value[sb[side].n] = x;
        sb[side].n++
    }
}

/* A load: the side's own newest buffered store to `w`, else memory. */
inline load(side, w, out) {
    d_step {
        out = MEMORY[w];
        sbi = 0;
        do
        :: sbi < sb[side].n ->
            if
            :: sb[side].word[sbi] == w -> out = sb[side].value[sbi]
            :: else
            fi;
            sbi++
        :: else -> break
        od;
        sbi = 0
    }
}

/* fence(SeqCst): wait until this side's buffer has drained. */
inline fence(side) {
    sb[side].n == 0
}

/* The store buffer draining into memory, oldest store first. */
proctype memory(bit side) {
    byte i;
end:
    do
    :: d_step {
        sb[side].n > 0 ->
        MEMORY[sb[side].word[0]] = sb[side].value[0];
        i = 1;
        do
        :: i < sb[side].n ->
            sb[side].word[i - 1] = sb[side].word[i];
            sb[side].value[i - 1] = sb[side].value[i];
            i++
        :: else -> break
        od;
        sb[side].n--;
        sb[side].word[sb[side].n] = 0;
        sb[side].value[sb[side].n] = 0;
        i = 0
       }
    od
}
