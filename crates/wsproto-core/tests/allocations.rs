//! Steady state allocates nothing: once the buffers have grown, receiving,
//! unmasking, validating and echoing a message does no heap allocation in
//! the core. Counted with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wsproto_core::frame::encode_frame;
use wsproto_core::{ChaChaSource, Config, Connection, Event, OpCode};

struct Counting;

std::thread_local! {
    /// Allocations made by this thread. Per thread, because the test
    /// harness's main thread allocates as it starts waiting for the test
    /// thread, and on a loaded machine that can fall inside a counted
    /// window (CI once saw 4 allocations in the first one). A `const`
    /// initialiser and no destructor: reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What the tokio adapter keeps while idle.
const IDLE_KEEP: usize = 4096;

/// Echoes `rounds` copies of `wire` (one masked frame) through a server
/// connection and returns the allocations made meanwhile. With `idle`, the
/// connection goes idle after each echo (`release_memory(IDLE_KEEP)`, as
/// the tokio adapter does when a read would block).
fn echo_allocations(conn: &mut Connection, wire: &[u8], rounds: usize, idle: bool) -> usize {
    let before = allocations();
    for _ in 0..rounds {
        if idle {
            conn.release_memory(IDLE_KEEP);
        }
        conn.receive(wire);
        let Some(Event::Message(message)) = conn.poll_event().unwrap() else {
            panic!("expected a message")
        };
        conn.send(message).unwrap();
        while let Some(chunk) = conn.poll_transmit() {
            let n = chunk.len();
            conn.advance(n);
        }
    }
    allocations() - before
}

#[test]
fn echo_in_steady_state_allocates_nothing() {
    for (opcode, size) in [
        (OpCode::Binary, 16usize),
        (OpCode::Binary, 1024),
        (OpCode::Binary, 64 * 1024),
        (OpCode::Text, 16),
        (OpCode::Text, 1024),
    ] {
        let payload = vec![b'a'; size];
        let mut wire = bytes::BytesMut::new();
        encode_frame(&mut wire, opcode, true, &payload, Some([1, 2, 3, 4]));
        let mut conn = Connection::server(Config::default());
        let warm_up = echo_allocations(&mut conn, &wire, 100, false);
        assert!(warm_up > 0, "the counter sees the buffers grow");
        // Fewer rounds for large messages: this runs unoptimised.
        let rounds = if size > 4096 { 1_000 } else { 10_000 };
        let steady = echo_allocations(&mut conn, &wire, rounds, false);
        assert_eq!(
            steady, 0,
            "{opcode:?} {size}: {steady} allocations in {rounds} echoes"
        );
        // Idle between messages: buffers up to IDLE_KEEP are kept and
        // reused; larger ones are given back and allocated again.
        let idle = echo_allocations(&mut conn, &wire, 1_000, true);
        if wire.len() <= IDLE_KEEP {
            assert_eq!(
                idle, 0,
                "{opcode:?} {size}: {idle} allocations, idle between echoes"
            );
        } else {
            assert!(
                idle >= 1_000,
                "{opcode:?} {size}: large buffers are released when idle"
            );
        }
        conn.release_memory(IDLE_KEEP);
        assert!(conn.read_buf().capacity() <= IDLE_KEEP);
    }

    // A client masks with a fresh key per frame: still nothing allocated.
    let mut client = Connection::client(
        Config::default(),
        Box::new(ChaChaSource::from_seed([3; 32])),
    );
    let mut unmasked = bytes::BytesMut::new();
    encode_frame(&mut unmasked, OpCode::Binary, true, &[7u8; 512], None);
    echo_allocations(&mut client, &unmasked, 100, false);
    assert_eq!(
        echo_allocations(&mut client, &unmasked, 10_000, true),
        0,
        "client echo"
    );
}
