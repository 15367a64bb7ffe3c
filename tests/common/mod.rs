//! Helpers shared by the behaviour suites (`tests/bus.rs`, `tests/work_queues.rs`).
#![allow(dead_code)]

use edgebus::{Bus, BusOptions, ManualClock};
use futures::channel::oneshot;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub type Log = Rc<RefCell<Vec<String>>>;

pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Where the virtual clock of [`virtual_bus`] starts, in microseconds.
pub const START: u64 = 1_000_000;

/// A bus on a `ManualClock` starting at [`START`], with options adjusted by `f`.
pub fn virtual_bus<P: Clone + edgebus::ByteSize + 'static>(
    f: impl FnOnce(&mut BusOptions<P>),
) -> (Bus<P>, ManualClock) {
    let clock = ManualClock::new(START);
    let mut o = BusOptions::<P> {
        clock: Some(Rc::new(clock.clone())),
        ..BusOptions::default()
    };
    f(&mut o);
    (Bus::new(o).unwrap(), clock)
}

type Opener = oneshot::Sender<Result<(), String>>;

/// Hands out futures that the test settles by name, to drive async handlers step by step.
#[derive(Default, Clone)]
pub struct Gates {
    open: Rc<RefCell<HashMap<String, Opener>>>,
}

impl Gates {
    pub fn wait(&self, name: &str) -> impl std::future::Future<Output = edgebus::HandlerResult> {
        let (tx, rx) = oneshot::channel();
        self.open.borrow_mut().insert(name.to_string(), tx);
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err("gate dropped".into()),
            }
        }
    }

    /// Settles the handler waiting on `name`. A handler the bus gave up on (timed out) has
    /// dropped its end; settling it then changes nothing, which is what the tests check.
    pub fn release(&self, name: &str, result: Result<(), &str>) {
        let tx = self
            .open
            .borrow_mut()
            .remove(name)
            .unwrap_or_else(|| panic!("no handler is waiting on {name}"));
        let _ = tx.send(result.map_err(str::to_string));
    }

    pub fn waiting(&self) -> Vec<String> {
        let mut v: Vec<String> = self.open.borrow().keys().cloned().collect();
        v.sort();
        v
    }
}
