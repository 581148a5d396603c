//! Group commit's batch: a writer thread takes the request that woke it and
//! every request already waiting behind it (at most `max`), and makes them
//! all durable with one fdatasync. The store's writer and the audit log's
//! writer batch this way.

use std::sync::mpsc::Receiver;

/// `first`, and whatever waits in `rx` behind it, up to `max` in all,
/// without waiting for more.
pub fn batch<T>(rx: &Receiver<T>, first: T, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(r) => batch.push(r),
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_waits_up_to_max() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 1..=5 {
            tx.send(i).unwrap();
        }
        assert_eq!(batch(&rx, 0, 4), [0, 1, 2, 3]);
        assert_eq!(batch(&rx, 9, 10), [9, 4, 5], "what waits, without waiting for more");
    }
}
