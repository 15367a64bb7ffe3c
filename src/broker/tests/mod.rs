//! Unit tests of the broker, one file per concern, each driving the sans-IO core directly through
//! the scripted [`driver::Driver`] (no `Bus`, no JavaScript): a manual clock, the operations a
//! driver performs, and assertions on the deliveries, events and statistics after each step.

mod driver;

mod deliver;
mod lifecycle;
mod logs;
mod publish;
mod requests;
mod stats;
mod subscriptions;
mod timers;
mod topics;
mod work_queues;
