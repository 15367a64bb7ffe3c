use edgebus::{Bus, BusOptions, PublishOptions, SubscribeOptions};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

fn main() -> edgebus::Result<()> {
    let bus: Bus<String> = Bus::new(BusOptions::default())?;
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    bus.subscribe("orders.*.created", move |msg| {
        println!("{} -> {}", msg.topic(), msg.payload());
        s.set(s.get() + 1);
        Ok(())
    })?;
    bus.subscribe_async(
        "orders.>",
        |msg| async move {
            println!("async {}", msg.payload());
            Ok(())
        },
        SubscribeOptions::default().concurrency(4),
    )?;
    bus.publish("orders.eu.created", "#1".into())?;
    bus.publish_with(
        "orders.eu.created",
        "#2".into(),
        PublishOptions::new()
            .key("customer-7")
            .ttl(Duration::from_secs(5)),
    )?;
    bus.run_until_idle(); // runs async handlers and timers until nothing is left
    assert_eq!(seen.get(), 2);
    Ok(())
}
