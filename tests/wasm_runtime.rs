//! The WebAssembly runtime on the real clock: async handlers on the JavaScript event loop
//! (`spawn_local`), timers from `gloo-timers`, `drain` awaited rather than run to completion.
#![cfg(target_arch = "wasm32")]

use edgebus::{BatchPolicy, Bus, BusOptions, Message, SubscribeOptions};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
async fn async_handlers_and_batch_timers_run_on_the_event_loop() {
    let bus: Bus<u32> = Bus::new(BusOptions::default()).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    bus.subscribe_async(
        "jobs",
        move |m: Message<u32>| {
            let s = s.clone();
            async move {
                gloo_timers::future::TimeoutFuture::new(2).await;
                s.borrow_mut().push(*m.payload());
                Ok(())
            }
        },
        SubscribeOptions::default(),
    )
    .unwrap();
    let batches = Rc::new(RefCell::new(Vec::new()));
    let b = batches.clone();
    bus.subscribe_batch(
        "ticks",
        move |ms| {
            b.borrow_mut().push(ms.len());
            Ok(())
        },
        SubscribeOptions::default().batch(BatchPolicy {
            max_wait: 20_000,
            ..BatchPolicy::default()
        }),
    )
    .unwrap();
    for i in 0..3 {
        bus.publish("jobs", i).unwrap();
        bus.publish("ticks", i).unwrap();
    }
    // Nothing has run yet: the handler awaits a timer, the batch waits 20 ms.
    assert!(seen.borrow().is_empty());
    gloo_timers::future::TimeoutFuture::new(40).await;
    assert_eq!(
        *batches.borrow(),
        vec![3],
        "the batch timer fired on its own"
    );
    bus.drain().await;
    assert_eq!(*seen.borrow(), vec![0, 1, 2]);
    assert!(bus.is_idle());
}
