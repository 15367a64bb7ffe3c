//! Statistics as handed to callers: plain data, serializable (JavaScript receives these as
//! objects with camelCase fields).

use serde::Serialize;

/// Publish→handler-start latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Deliveries measured.
    pub count: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// Statistics of one subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStats {
    /// The subscription's id (its position in subscription order).
    pub id: u64,
    /// Its pattern.
    pub pattern: String,
    /// The name of the work queue it is a member of, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Messages handed to its handler.
    pub delivered: u64,
    /// Messages dropped by its overflow policy.
    pub dropped: u64,
    /// Messages whose TTL ended before they started.
    pub expired: u64,
    /// Messages whose handler failed (threw, rejected, timed out), after any retries.
    pub failed: u64,
    /// Messages discarded because it unsubscribed before they started.
    pub cancelled: u64,
    /// Messages waiting in its queue.
    pub queued: u64,
    /// Deliveries started and not yet settled.
    pub in_flight: u64,
    /// Publish→handler-start latency.
    pub latency: LatencySummary,
}

/// Statistics of a bus.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BusStats {
    /// Messages accepted by `publish` (duplicates excluded).
    pub published: u64,
    /// Deliveries handed to handlers (a message fanned out to three subscriptions counts three).
    pub delivered: u64,
    /// Messages dropped by the idempotence filter.
    pub duplicates: u64,
    /// Messages dropped by overflow policies.
    pub dropped: u64,
    /// Messages whose TTL ended before they started.
    pub expired: u64,
    /// Deliveries whose handler failed, after any retries.
    pub failed: u64,
    /// Messages discarded by unsubscribing before they started.
    pub cancelled: u64,
    /// Messages waiting in queues.
    pub queued: u64,
    /// Deliveries started and not yet settled.
    pub in_flight: u64,
    /// Live subscriptions.
    pub subscriptions: u64,
    /// Publish→handler-start latency over every subscription.
    pub latency: LatencySummary,
    /// Per-subscription statistics, in subscription order.
    pub per_subscription: Vec<SubscriptionStats>,
    /// Messages published with a `notBefore` still in the future (not routed yet).
    pub delayed: u64,
    /// Work queues, in creation order.
    pub groups: Vec<GroupStats>,
    /// Requests and their replies.
    pub requests: RequestStats,
    /// Retained values and history.
    pub logs: crate::logs::LogStats,
}

/// What requests counted ([`crate::broker::Broker::open_request`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    /// Requests published (refused ones excluded).
    pub sent: u64,
    /// Replies taken.
    pub replies: u64,
    /// Responders' final failures taken as answers.
    pub failed: u64,
    /// Responders that completed without a reply.
    pub declined: u64,
    /// Requests that reached their deadline.
    pub timed_out: u64,
    /// Requests refused because no subscription matched, or ended because every subscription
    /// reached declined.
    pub no_responders: u64,
    /// Requests given up by their requester, or ended by the close.
    pub cancelled: u64,
    /// Answers that came after their request ended, or a second one from one responder: ignored.
    pub late: u64,
    /// Requests waiting for answers.
    pub pending: u64,
}

/// Statistics of one work queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// The pattern its members share.
    pub pattern: String,
    /// Live members.
    pub members: u64,
    /// Messages waiting: pending (for a member, or behind an earlier one with the same key) and
    /// failed ones waiting for their retry.
    pub depth: u64,
    /// Of `depth`, the failed messages waiting for their retry.
    pub retrying: u64,
    /// Messages claimed by a member and not settled.
    pub in_flight: u64,
    /// Messages the group accepted.
    pub published: u64,
    /// Messages acknowledged.
    pub done: u64,
    /// Failed attempts that were scheduled for a retry.
    pub retried: u64,
    /// Messages that failed every attempt and went to `$dead.<group>`.
    pub dead: u64,
    /// Messages whose TTL ended before a member claimed them.
    pub expired: u64,
    /// Messages dropped by the group's overflow policy.
    pub dropped: u64,
    /// Finished ids still answered by `status` (bounded by the retention window).
    pub remembered: u64,
}
