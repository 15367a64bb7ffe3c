//! `WasmRequests`: the core's request rules ([`RequestTable`]) for a driver whose responders are
//! elsewhere (the package's `RequestTracker`; the edge hub keeps its connections' requests in
//! one), with their deadlines.

use crate::broker::{Answer, AnswerKind, Reached, RequestId, RequestTable};
use crate::clock::ms_to_micros;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use wasm_bindgen::prelude::*;

/// Answers of `answer`, as `WasmBroker::answer` gives them (see `protocol().answers`).
const LATE: u32 = 0;
const REPLY: u32 = 1;
const REPLY_LAST: u32 = 2;
const FAILED: u32 = 3;
const FAILED_LAST: u32 = 4;
const DECLINED: u32 = 5;
const DECLINED_LAST: u32 = 6;

/// Answers of `reached`.
const PENDING: u32 = 0;
const ENDED_WITH_REPLIES: u32 = 1;
const ENDED_WITH_FAILURES: u32 = 2;
const ENDED_WITHOUT_RESPONDERS: u32 = 3;
const GONE: u32 = 4;

/// Pending requests and their deadlines (internal to the package).
#[wasm_bindgen]
pub struct WasmRequests {
    table: RequestTable,
    deadlines: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Default for WasmRequests {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl WasmRequests {
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmRequests {
        WasmRequests {
            table: RequestTable::new(),
            deadlines: BinaryHeap::new(),
        }
    }

    /// Opens a request taking up to `max` replies, waiting for `reports` reports of responders,
    /// ending at `deadline_ms` (none when not finite); returns `index × 2^32 + gen`. `max` is
    /// validated by the JavaScript layer (out of range: `INVALID_OPTION`).
    pub fn open(&mut self, max: u32, reports: u32, deadline_ms: f64) -> Result<f64, JsValue> {
        let id = self
            .table
            .open(max, 0, reports)
            .map_err(super::error::to_js)?;
        if deadline_ms.is_finite() && deadline_ms >= 0.0 {
            self.deadlines.push(Reverse((
                ms_to_micros(deadline_ms),
                id.index(),
                id.generation(),
            )));
        }
        Ok(f64::from(id.index()) * 4_294_967_296.0 + f64::from(id.generation()))
    }

    /// Counts a request refused because nothing could answer it.
    pub fn refused_without_responders(&mut self) {
        self.table.refused_without_responders();
    }

    /// A report of responders came: `responders` more, `reports` more reports to wait for.
    pub fn reached(&mut self, index: u32, gen: u32, reports: u32, responders: u32) -> u32 {
        match self
            .table
            .reached(RequestId::from_parts(index, gen), reports, responders)
        {
            Reached::Pending => PENDING,
            Reached::Gone => GONE,
            Reached::Ended { replies, .. } if replies > 0 => ENDED_WITH_REPLIES,
            Reached::Ended { failures, .. } if failures > 0 => ENDED_WITH_FAILURES,
            Reached::Ended { .. } => ENDED_WITHOUT_RESPONDERS,
        }
    }

    /// Responder `responder`'s answer (`kind`: 0 a reply, 1 a final failure, 2 a decline).
    pub fn answer(&mut self, index: u32, gen: u32, responder: f64, kind: u32) -> u32 {
        let kind = match kind {
            0 => AnswerKind::Reply,
            1 => AnswerKind::Failure,
            2 => AnswerKind::Decline,
            _ => return LATE,
        };
        let responder = if responder.is_finite() && responder >= 0.0 {
            responder as u64
        } else {
            return LATE;
        };
        match self
            .table
            .answer(RequestId::from_parts(index, gen), responder, kind)
        {
            Answer::Late => LATE,
            Answer::Reply { last: false } => REPLY,
            Answer::Reply { last: true } => REPLY_LAST,
            Answer::Failed { last: false, .. } => FAILED,
            Answer::Failed { last: true, .. } => FAILED_LAST,
            Answer::Declined { last: false, .. } => DECLINED,
            Answer::Declined { last: true, .. } => DECLINED_LAST,
        }
    }

    /// Ends a request for its requester; false when it had ended.
    pub fn cancel(&mut self, index: u32, gen: u32) -> bool {
        self.table.cancel(RequestId::from_parts(index, gen))
    }

    /// Ends the requests due by `now_ms` (counted timed out): their ids, `[index, gen, …]`.
    pub fn due(&mut self, now_ms: f64) -> Vec<u32> {
        let now = ms_to_micros(now_ms);
        let mut out = Vec::new();
        while let Some(Reverse((at, index, gen))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.table.time_out(RequestId::from_parts(index, gen)) {
                out.push(index);
                out.push(gen);
            }
        }
        out
    }

    /// The earliest deadline of a pending request, in ms (-1 when none).
    pub fn next_deadline(&mut self) -> f64 {
        while let Some(Reverse((at, index, gen))) = self.deadlines.peek().copied() {
            if self.table.is_pending(RequestId::from_parts(index, gen)) {
                return at as f64 / 1000.0;
            }
            self.deadlines.pop();
        }
        -1.0
    }

    /// Requests pending.
    pub fn pending(&self) -> u32 {
        self.table.len() as u32
    }

    /// `{ sent, replies, failed, declined, timedOut, noResponders, cancelled, late, pending }`.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        super::js::request_stats(&self.table.stats())
    }
}
