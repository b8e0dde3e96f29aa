//! Slots shared fairly between sources (SPEC §6). The server keeps two
//! such queues: one for the hello slots (a connection reading its
//! ClientHello holds one) and one for the handshake slots (the rest of a
//! handshake, once its ClientHello is whole; see `super::client_hello`).
//! Below, "handshake" stands for either.
//!
//! The accept loop keeps accepting, so that a source holding many stalled
//! handshakes cannot keep everyone else in the kernel's backlog. Each
//! accepted socket waits here, in its source's queue, for one of the
//! `max_handshakes` handshake slots:
//!
//! - Free slots go to sources in turn (round robin), each source's oldest
//!   socket first: a source with a hundred sockets waiting gets no more
//!   turns than one with a single socket.
//! - The last quarter of the slots ([`HandshakeQueue::reserved`]) go only
//!   to sources with no handshake in progress, so that a client from a new
//!   source starts its handshake at once even while one source holds every
//!   other slot with handshakes that never finish.
//! - At most `max_waiting` sockets wait in all. At the bound, a new socket
//!   sheds the oldest waiting socket of the source with the most waiting
//!   (closed without a handshake); when a single source is waiting, the
//!   accept loop pauses instead ([`HandshakeQueue::room`]), so that a load
//!   tool opening thousands of connections at once from one address waits
//!   in the kernel's backlog rather than being shed: nobody else is there
//!   to be fair to.
//!
//! A socket's handshake deadline counts from its turn: waiting is bounded
//! by the number of sockets that may wait, not by time, so that a burst of
//! thousands from one address waits its turn instead of timing out.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, oneshot};

use super::source::Source;

/// The handshake slots and the sockets waiting for one.
#[derive(Debug)]
pub(super) struct HandshakeQueue {
    state: Mutex<State>,
    /// The `nea_handshakes_in_progress` gauge, set whenever
    /// `State::in_progress` changes.
    gauge: prometheus_client::metrics::gauge::Gauge,
    /// Woken each time a waiting socket leaves the queue, for an accept
    /// loop paused at the bound.
    room: Notify,
}

#[derive(Debug)]
struct State {
    /// `--max-handshakes`.
    max_handshakes: usize,
    /// Slots only a source with no handshake in progress may take.
    /// Invariant: `reserved < max_handshakes`.
    reserved: usize,
    /// Most sockets waiting at once. Invariant: at least 1.
    max_waiting: usize,
    /// Handshake slots held. Invariant: `in_progress <= max_handshakes`,
    /// and equals the sum of the sources' `in_progress`.
    in_progress: usize,
    /// Sockets waiting. Invariant: equals the sum of the sources' `waiting`.
    waiting: usize,
    /// Every source with a socket waiting or a handshake in progress.
    /// Invariant: no entry has both counts zero.
    sources: HashMap<Source, SourceState>,
    /// The sources with a socket waiting, in the order they get their next
    /// turn. Invariant: holds each source with `waiting > 0` exactly once,
    /// and no other.
    turns: VecDeque<Source>,
}

#[derive(Debug, Default)]
struct SourceState {
    /// Handshake slots this source holds.
    in_progress: usize,
    /// This source's sockets waiting for a slot.
    waiting: usize,
    /// The waiting sockets, oldest first. Holds every waiting socket and
    /// possibly some that gave up (their receiver is closed), which are
    /// skipped, and removed once they outnumber the waiting ones.
    queue: VecDeque<oneshot::Sender<HandshakeSlot>>,
}

/// One handshake in progress: held from the moment a socket gets its turn
/// until its handshake is over (or, for a rejected client, until it is
/// closed). Dropping it hands the slot to the next source in turn.
#[derive(Debug)]
pub(super) struct HandshakeSlot {
    queue: Arc<HandshakeQueue>,
    source: Source,
}

/// A socket's place in its source's queue; [`WaitTicket::turn`] waits for
/// its slot. Dropping it leaves the queue.
#[derive(Debug)]
pub(super) struct WaitTicket {
    queue: Arc<HandshakeQueue>,
    source: Source,
    /// Receives the slot, or fails if the socket is shed.
    turn: oneshot::Receiver<HandshakeSlot>,
    /// Set once `turn` has given its result: nothing is left to undo.
    done: bool,
}

/// Why a waiting socket got no slot: it was the oldest of the source with
/// the most sockets waiting when the queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shed;

impl HandshakeQueue {
    /// `max_handshakes` slots, and room for `max_waiting` sockets waiting.
    pub(super) fn new(
        max_handshakes: usize,
        max_waiting: usize,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> Arc<Self> {
        let max_handshakes = max_handshakes.max(1);
        Arc::new(Self {
            gauge,
            state: Mutex::new(State {
                max_handshakes,
                reserved: Self::reserved(max_handshakes),
                max_waiting: max_waiting.max(1),
                in_progress: 0,
                waiting: 0,
                sources: HashMap::new(),
                turns: VecDeque::new(),
            }),
            room: Notify::new(),
        })
    }

    /// The slots kept for sources with no handshake in progress: a quarter.
    fn reserved(max_handshakes: usize) -> usize {
        max_handshakes / 4
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a socket from `source` in the queue, shedding another one if the
    /// queue is full, and hands out any free slot.
    pub(super) fn enqueue(self: &Arc<Self>, source: Source) -> WaitTicket {
        let (sender, turn) = oneshot::channel();
        let mut undelivered = Vec::new();
        {
            let mut state = self.lock();
            if state.waiting >= state.max_waiting {
                state.shed_one();
            }
            state.waiting += 1;
            let entry = state.sources.entry(source).or_default();
            entry.waiting += 1;
            entry.queue.push_back(sender);
            if entry.waiting == 1 {
                state.turns.push_back(source);
            }
            state.hand_out(self, &mut undelivered);
        }
        // A slot that found its receiver gone frees itself, which takes the
        // lock: only once it is released.
        drop(undelivered);
        WaitTicket {
            queue: self.clone(),
            source,
            turn,
            done: false,
        }
    }

    /// Returns once the accept loop may accept another socket: unless the
    /// queue is full with a single source waiting (see the module doc).
    pub(super) async fn room(&self) {
        loop {
            let freed = self.room.notified();
            {
                let state = self.lock();
                if state.waiting < state.max_waiting || state.turns.len() > 1 {
                    return;
                }
            }
            freed.await;
        }
    }

    /// Sockets waiting and handshakes in progress, for tests and logs.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.waiting, state.in_progress)
    }
}

impl State {
    /// Gives free slots to waiting sockets, one source per turn. Slots whose
    /// receiver is gone come back in `undelivered`, to be dropped by the
    /// caller once the lock is released.
    fn hand_out(&mut self, queue: &Arc<HandshakeQueue>, undelivered: &mut Vec<HandshakeSlot>) {
        let mut passes = self.turns.len();
        while self.in_progress < self.max_handshakes && passes > 0 {
            let Some(source) = self.turns.pop_front() else {
                break;
            };
            let free = self.max_handshakes - self.in_progress;
            let Some(entry) = self.sources.get_mut(&source) else {
                continue;
            };
            if free <= self.reserved && entry.in_progress > 0 {
                // Only a source without a handshake may take a reserved slot.
                self.turns.push_back(source);
                passes -= 1;
                continue;
            }
            let Some(sender) = pop_waiting(&mut entry.queue) else {
                // Unreachable while the invariants hold; repair them.
                self.waiting -= entry.waiting;
                entry.waiting = 0;
                self.forget_if_idle(source);
                passes = self.turns.len();
                continue;
            };
            entry.waiting -= 1;
            entry.in_progress += 1;
            if entry.waiting > 0 {
                self.turns.push_back(source);
            }
            self.waiting -= 1;
            self.in_progress += 1;
            queue
                .gauge
                .set(i64::try_from(self.in_progress).unwrap_or(i64::MAX));
            queue.room.notify_one();
            let slot = HandshakeSlot {
                queue: queue.clone(),
                source,
            };
            if let Err(slot) = sender.send(slot) {
                undelivered.push(slot);
            }
            passes = self.turns.len();
        }
    }

    /// Closes the oldest waiting socket of the source with the most waiting.
    fn shed_one(&mut self) {
        let Some((&source, _)) = self
            .sources
            .iter()
            .filter(|(_, entry)| entry.waiting > 0)
            .max_by_key(|(_, entry)| entry.waiting)
        else {
            return;
        };
        let Some(entry) = self.sources.get_mut(&source) else {
            return;
        };
        // Dropping the sender tells the socket's task it was shed.
        let shed = pop_waiting(&mut entry.queue);
        debug_assert!(
            shed.is_some(),
            "a source with sockets waiting has one queued"
        );
        entry.waiting -= 1;
        self.waiting -= 1;
        if entry.waiting == 0 {
            self.turns.retain(|s| *s != source);
        }
        self.forget_if_idle(source);
    }

    /// Drops the record of a source that has nothing waiting or in progress.
    fn forget_if_idle(&mut self, source: Source) {
        if let Entry::Occupied(entry) = self.sources.entry(source)
            && entry.get().waiting == 0
            && entry.get().in_progress == 0
        {
            entry.remove();
        }
        if !self.sources.contains_key(&source) || self.sources[&source].waiting == 0 {
            self.turns.retain(|s| *s != source);
        }
    }
}

/// The oldest sender whose socket still waits, skipping those that gave up.
fn pop_waiting(
    queue: &mut VecDeque<oneshot::Sender<HandshakeSlot>>,
) -> Option<oneshot::Sender<HandshakeSlot>> {
    while let Some(sender) = queue.pop_front() {
        if !sender.is_closed() {
            return Some(sender);
        }
    }
    None
}

impl WaitTicket {
    /// The same socket in `source`'s queue instead (its PROXY protocol
    /// header named a client elsewhere): it leaves its place, and any slot
    /// it was just given, and waits at the back of the new source's queue.
    pub(super) fn requeue(self, source: Source) -> Self {
        if source == self.source {
            return self;
        }
        let queue = self.queue.clone();
        drop(self);
        queue.enqueue(source)
    }

    /// Waits for this socket's handshake slot; `Err(Shed)` if the socket
    /// was shed to make room.
    pub(super) async fn turn(mut self) -> Result<HandshakeSlot, Shed> {
        let turn = (&mut self.turn).await;
        self.done = true;
        turn.map_err(|_| Shed)
    }
}

impl Drop for WaitTicket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let granted = {
            let mut state = self.queue.lock();
            match self.turn.try_recv() {
                // Handed a slot just as it gave up: the slot is freed below.
                Ok(slot) => Some(slot),
                // Shed: already counted out.
                Err(oneshot::error::TryRecvError::Closed) => None,
                Err(oneshot::error::TryRecvError::Empty) => {
                    self.turn.close();
                    state.waiting -= 1;
                    if let Some(entry) = state.sources.get_mut(&self.source) {
                        entry.waiting -= 1;
                        if entry.queue.len() > 2 * entry.waiting + 8 {
                            entry.queue.retain(|sender| !sender.is_closed());
                        }
                    }
                    state.forget_if_idle(self.source);
                    self.queue.room.notify_one();
                    None
                }
            }
        };
        drop(granted);
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut undelivered = Vec::new();
        {
            let mut state = self.queue.lock();
            state.in_progress -= 1;
            self.queue
                .gauge
                .set(i64::try_from(state.in_progress).unwrap_or(i64::MAX));
            if let Some(entry) = state.sources.get_mut(&self.source) {
                entry.in_progress -= 1;
            }
            state.forget_if_idle(self.source);
            state.hand_out(&self.queue, &mut undelivered);
        }
        drop(undelivered);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn source(last: u8) -> Source {
        Source::from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    /// The ticket's slot, if it has been handed one.
    fn take(ticket: &mut WaitTicket) -> Option<HandshakeSlot> {
        let slot = ticket.turn.try_recv().ok()?;
        ticket.done = true;
        Some(slot)
    }

    /// Whether the ticket's socket was shed.
    fn shed(ticket: &mut WaitTicket) -> bool {
        matches!(
            ticket.turn.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        )
    }

    /// Whether `room()` is ready now.
    fn has_room(queue: &HandshakeQueue) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut room = std::pin::pin!(queue.room());
        room.as_mut().poll(&mut cx).is_ready()
    }

    /// Checks every invariant the fields document.
    fn check(queue: &HandshakeQueue) {
        let state = queue.lock();
        assert!(state.in_progress <= state.max_handshakes);
        assert_eq!(
            state.in_progress,
            state.sources.values().map(|e| e.in_progress).sum::<usize>()
        );
        assert_eq!(
            state.waiting,
            state.sources.values().map(|e| e.waiting).sum::<usize>()
        );
        for (source, entry) in &state.sources {
            assert!(
                entry.waiting > 0 || entry.in_progress > 0,
                "{source} kept idle"
            );
            let live = entry.queue.iter().filter(|s| !s.is_closed()).count();
            assert_eq!(live, entry.waiting, "{source}'s queue");
            let turns = state.turns.iter().filter(|s| *s == source).count();
            assert_eq!(turns, usize::from(entry.waiting > 0), "{source}'s turns");
        }
        assert!(state.turns.iter().all(|s| state.sources.contains_key(s)));
        // Nothing waits while a slot it may take is free.
        let free = state.max_handshakes - state.in_progress;
        if free > state.reserved {
            assert_eq!(state.waiting, 0, "a free slot and a socket waiting");
        }
    }

    #[test]
    fn a_new_source_gets_a_reserved_slot_while_another_holds_the_rest() {
        let queue = HandshakeQueue::new(8, 100, Default::default());
        let mut held = Vec::new();
        let mut waiting = Vec::new();
        for _ in 0..20 {
            let mut ticket = queue.enqueue(source(2));
            match take(&mut ticket) {
                Some(slot) => held.push(slot),
                None => waiting.push(ticket),
            }
        }
        // 8 slots, 2 reserved: the busy source holds the other 6.
        assert_eq!((held.len(), waiting.len()), (6, 14));
        let mut second = queue.enqueue(source(3));
        let mut third = queue.enqueue(source(4));
        let mut fourth = queue.enqueue(source(5));
        let _second = take(&mut second).expect("a new source starts at once");
        let _third = take(&mut third).expect("so does the next");
        assert!(take(&mut fourth).is_none(), "every slot is taken");
        check(&queue);
    }

    #[test]
    fn free_slots_go_to_sources_in_turn() {
        let queue = HandshakeQueue::new(1, 100, Default::default());
        let mut first = queue.enqueue(source(9));
        let mut slot = take(&mut first).expect("the free slot");
        let mut a: Vec<_> = (0..3).map(|_| queue.enqueue(source(2))).collect();
        let mut b: Vec<_> = (0..3).map(|_| queue.enqueue(source(3))).collect();
        let mut order = Vec::new();
        for _ in 0..6 {
            drop(slot);
            check(&queue);
            let (which, next) = a
                .iter_mut()
                .enumerate()
                .find_map(|(i, t)| take(t).map(|s| (('a', i), s)))
                .or_else(|| {
                    b.iter_mut()
                        .enumerate()
                        .find_map(|(i, t)| take(t).map(|s| (('b', i), s)))
                })
                .expect("one socket got the freed slot");
            order.push(which);
            slot = next;
        }
        assert_eq!(
            order,
            [('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2), ('b', 2)],
            "alternating, oldest first"
        );
    }

    #[test]
    fn a_full_queue_sheds_the_oldest_of_the_source_with_the_most_waiting() {
        let queue = HandshakeQueue::new(1, 4, Default::default());
        let _busy = take(&mut queue.enqueue(source(9))).expect("the slot");
        let mut a: Vec<_> = (0..3).map(|_| queue.enqueue(source(2))).collect();
        let mut b = queue.enqueue(source(3));
        assert!(!a.iter_mut().any(shed));
        let _c = queue.enqueue(source(4));
        assert!(shed(&mut a[0]), "the busiest source's oldest goes");
        assert!(!shed(&mut a[1]) && !shed(&mut a[2]) && !shed(&mut b));
        assert_eq!(queue.counts(), (4, 1));
        check(&queue);
    }

    #[test]
    fn a_full_queue_pauses_accepting_only_while_one_source_waits() {
        let queue = HandshakeQueue::new(1, 2, Default::default());
        let _busy = take(&mut queue.enqueue(source(9))).expect("the slot");
        let first = queue.enqueue(source(2));
        assert!(has_room(&queue));
        let _second = queue.enqueue(source(2));
        assert!(
            !has_room(&queue),
            "full, and one source: wait in the backlog"
        );
        drop(first);
        assert!(has_room(&queue), "a socket that gave up makes room");
        let _other = queue.enqueue(source(3));
        assert!(has_room(&queue), "full with two sources: accept, and shed");
        check(&queue);
    }

    #[test]
    fn a_slot_handed_to_a_socket_that_gave_up_goes_to_the_next() {
        let queue = HandshakeQueue::new(1, 10, Default::default());
        let mut first = queue.enqueue(source(2));
        let slot = take(&mut first).expect("the slot");
        let late = queue.enqueue(source(3));
        let mut next = queue.enqueue(source(4));
        drop(slot);
        // `late` was handed the slot but gives up before taking it.
        drop(late);
        assert!(take(&mut next).is_some());
        check(&queue);
    }

    #[test]
    fn a_requeued_socket_gives_up_its_place_and_any_slot_it_was_handed() {
        let queue = HandshakeQueue::new(1, 10, Default::default());
        // Handed the free slot while its PROXY header was being read.
        let proxied = queue.enqueue(source(1));
        let mut other = queue.enqueue(source(1));
        let mut proxied = proxied.requeue(source(7));
        check(&queue);
        let slot = take(&mut other).expect("the slot went to the next socket");
        assert!(take(&mut proxied).is_none(), "it waits, now as source 7");
        drop(slot);
        let _held = take(&mut proxied).expect("its turn as source 7");
        // Requeued to its own source, it keeps its place.
        let mut same = queue.enqueue(source(2)).requeue(source(2));
        assert!(take(&mut same).is_none() && !shed(&mut same));
        check(&queue);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Accept(u8),
        Requeue(usize, u8),
        GiveUp(usize),
        Finish(usize),
    }

    proptest! {
        #[test]
        fn the_counts_stay_true_whatever_happens(
            max_handshakes in 1usize..6,
            max_waiting in 1usize..8,
            ops in proptest::collection::vec(
                prop_oneof![
                    (0u8..4).prop_map(Op::Accept),
                    (any::<usize>(), 0u8..4).prop_map(|(i, s)| Op::Requeue(i, s)),
                    any::<usize>().prop_map(Op::GiveUp),
                    any::<usize>().prop_map(Op::Finish),
                ],
                0..80,
            ),
        ) {
            let queue = HandshakeQueue::new(max_handshakes, max_waiting, Default::default());
            let mut tickets: Vec<WaitTicket> = Vec::new();
            let mut slots: Vec<HandshakeSlot> = Vec::new();
            for op in ops {
                match op {
                    Op::Accept(s) => tickets.push(queue.enqueue(source(s))),
                    Op::Requeue(i, s) if !tickets.is_empty() => {
                        let ticket = tickets.swap_remove(i % tickets.len());
                        tickets.push(ticket.requeue(source(s)));
                    }
                    Op::GiveUp(i) if !tickets.is_empty() => {
                        drop(tickets.swap_remove(i % tickets.len()));
                    }
                    Op::Finish(i) if !slots.is_empty() => {
                        drop(slots.swap_remove(i % slots.len()));
                    }
                    _ => {}
                }
                // Sockets handed a slot start their handshake; shed ones close.
                let mut kept = Vec::new();
                for mut ticket in tickets.drain(..) {
                    if let Some(slot) = take(&mut ticket) {
                        slots.push(slot);
                    } else if !shed(&mut ticket) {
                        kept.push(ticket);
                    }
                }
                tickets = kept;
                check(&queue);
                prop_assert_eq!(queue.counts(), (tickets.len(), slots.len()));
                prop_assert!(tickets.len() <= max_waiting);
            }
        }
    }
}
