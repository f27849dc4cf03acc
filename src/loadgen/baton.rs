//! A last-in-first-out baton: one idle worker at a time waits for the next open-loop ticket.
//!
//! Without it every idle worker would claim a ticket ahead of time and sleep on it, so requests
//! would rotate over all connections. Handing the baton to the *most recently* idle worker
//! keeps the busy set small: the number of connections in use follows the concurrency the
//! target really needs, and those connections stay warm.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// The baton itself; shared by the workers of one load.
#[derive(Debug, Default)]
pub(crate) struct Baton {
    held: AtomicBool,
    waiters: Notify,
}

/// Holding the baton; dropping it hands the baton on.
#[derive(Debug)]
pub(crate) struct BatonGuard<'a> {
    baton: &'a Baton,
}

impl Baton {
    /// Waits until this worker holds the baton.
    pub(crate) async fn acquire(&self) -> BatonGuard<'_> {
        loop {
            if self.try_take() {
                return BatonGuard { baton: self };
            }
            let notified = self.waiters.notified();
            tokio::pin!(notified);
            // Register before re-checking, so a release in between is not missed.
            notified.as_mut().enable();
            if self.try_take() {
                return BatonGuard { baton: self };
            }
            notified.await;
        }
    }

    fn try_take(&self) -> bool {
        !self.held.swap(true, Ordering::AcqRel)
    }
}

impl Drop for BatonGuard<'_> {
    fn drop(&mut self) {
        self.baton.held.store(false, Ordering::Release);
        // LIFO: the worker that went idle last has the warmest connection.
        self.baton.waiters.notify_last();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::Baton;

    #[tokio::test]
    async fn the_baton_goes_to_the_most_recent_waiter_and_is_never_shared() {
        let baton = Arc::new(Baton::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = baton.acquire().await;
        let mut tasks = tokio::task::JoinSet::new();
        for id in 0..3 {
            let (baton, order) = (Arc::clone(&baton), Arc::clone(&order));
            tasks.spawn(async move {
                let guard = baton.acquire().await;
                order.lock().expect("order").push(id);
                assert!(baton.held.load(std::sync::atomic::Ordering::Acquire));
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(guard);
            });
            // Let the task register as a waiter before the next one.
            tokio::task::yield_now().await;
        }
        drop(first);
        while let Some(done) = tasks.join_next().await {
            done.expect("waiter task");
        }
        assert_eq!(*order.lock().expect("order"), vec![2, 1, 0]);
    }
}
