//! Delivery tracking: which events' messages the brokers acknowledged, and which positions
//! that makes durable.
//!
//! Every event gets a ticket; its messages (the event and maybe a tombstone) carry the ticket
//! as their delivery opaque. librdkafka calls [`DeliveryContext::delivery`] from its polling
//! thread; the sink keeps, per source partition, the tickets in source order and pops the
//! front while it is delivered. So a position is reported only when it and everything before
//! it in its source partition were delivered, whatever order the Kafka partitions
//! acknowledged them in.

use crate::auth::AuthContext;
use cdc_core::{Position, SourcePartition};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Tickets are sequential integers: a multiplicative hash spreads them well and costs far
/// less than SipHash, which showed in profiles of the produce path.
#[derive(Debug, Default, Clone, Copy)]
struct TicketHasher(u64);

impl std::hash::Hasher for TicketHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type TicketMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<TicketHasher>>;

#[derive(Debug, Default)]
struct Deliveries {
    /// Messages still in flight, per ticket.
    outstanding: TicketMap<u32>,
    /// The first failure of each failed ticket, with its topic.
    failed: BTreeMap<u64, (String, KafkaError)>,
}

/// Shared between the sink and the producer's delivery callback.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeliveryTracker {
    inner: Arc<Mutex<Deliveries>>,
}

impl DeliveryTracker {
    fn lock(&self) -> MutexGuard<'_, Deliveries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `messages` will be sent for `ticket`.
    pub(crate) fn expect(&self, ticket: u64, messages: u32) {
        self.lock().outstanding.insert(ticket, messages);
    }

    /// Like [`expect`](Self::expect) for many tickets under one lock.
    pub(crate) fn expect_all(&self, tickets: impl IntoIterator<Item = (u64, u32)>) {
        self.lock().outstanding.extend(tickets);
    }

    /// A message of `ticket` could not even be queued: count it as failed.
    pub(crate) fn fail(&self, ticket: u64, topic: &str, error: KafkaError) {
        let mut state = self.lock();
        state
            .failed
            .entry(ticket)
            .or_insert((topic.to_string(), error));
        // Its other messages were not sent: nothing more will be reported for the ticket.
        state.outstanding.remove(&ticket);
    }

    /// Messages still in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().outstanding.values().map(|&n| n as usize).sum()
    }

    fn delivered(&self, ticket: u64, result: Result<(), (String, KafkaError)>) {
        let mut state = self.lock();
        if let Err(failure) = result {
            state.failed.entry(ticket).or_insert(failure);
        }
        if let Some(left) = state.outstanding.get_mut(&ticket) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                state.outstanding.remove(&ticket);
            }
        }
    }
}

/// The producer context: routes delivery reports to the tracker, token refreshes to the
/// authentication context.
#[derive(Clone, Default)]
pub(crate) struct DeliveryContext {
    pub(crate) tracker: DeliveryTracker,
    pub(crate) auth: AuthContext,
}

crate::auth::oauth_client_context!(DeliveryContext, |context| &context.auth);

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: usize) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((error, message)) => Err((message.topic().to_string(), error.clone())),
        };
        self.tracker.delivered(ticket as u64, result);
    }
}

/// A delivery failure found while advancing: the event's position, its topic, the error.
pub(crate) type Failure = Box<(Position, String, KafkaError)>;

/// The events sent but not yet known durable, per source partition, in source order.
#[derive(Debug, Default)]
pub(crate) struct PartitionQueues {
    next_ticket: u64,
    queues: HashMap<SourcePartition, VecDeque<(u64, Position)>>,
}

impl PartitionQueues {
    /// A ticket for the next event, queued in its source partition's queue.
    pub(crate) fn push(&mut self, position: &Position) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queues
            .entry(position.source_partition())
            .or_default()
            .push_back((ticket, position.clone()));
        ticket
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }

    /// Pops every source partition's delivered prefix; returns the last popped position per source partition, or the
    /// first failure at the front of a source partition's queue (nothing after it is popped).
    pub(crate) fn advance(&mut self, tracker: &DeliveryTracker) -> Result<Vec<Position>, Failure> {
        let mut state = tracker.lock();
        let mut durable = Vec::new();
        for queue in self.queues.values_mut() {
            let mut last = None;
            while let Some((ticket, _)) = queue.front() {
                if let Some((topic, error)) = state.failed.remove(ticket) {
                    let position = queue.front().map(|(_, p)| p.clone());
                    if let Some(position) = position {
                        return Err(Box::new((position, topic, error)));
                    }
                }
                if state.outstanding.contains_key(ticket) {
                    break;
                }
                last = queue.pop_front().map(|(_, p)| p);
            }
            durable.extend(last);
        }
        self.queues.retain(|_, q| !q.is_empty());
        Ok(durable)
    }
}
