//! The connection cap, shared by every listener of the process: each connection costs a file
//! descriptor, and a process out of descriptors can accept nothing, the load balancer's health
//! checks included (the probe held 1,005 idle keep-alive connections under `nofile` 1024 and
//! `/gtg` stopped answering). So connections are capped below the descriptor limit, with a reserve
//! for the store's own connections, files and logs; at the cap the connection idle the longest is
//! closed to make room, and only when none is idle is the new one refused.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::Notify;

use super::activity::Activity;

/// Descriptors kept out of the cap: store connections (SDK pools), the embedded store's files,
/// logs, the listeners. At least this many, or an eighth of the limit if that is more.
pub const RESERVE: u64 = 64;

/// The cap for a descriptor limit: the soft `RLIMIT_NOFILE` less [`RESERVE`] (or an eighth).
pub fn cap_for(nofile: u64) -> usize {
    let reserve = RESERVE.max(nofile / 8);
    usize::try_from(nofile.saturating_sub(reserve).max(16)).unwrap_or(usize::MAX)
}

/// The soft descriptor limit of this process.
#[allow(unsafe_code)] // getrlimit(2): see the SAFETY comment.
pub fn nofile_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own and has no other preconditions.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Every open connection of the process.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Tracked>>,
}

#[derive(Debug)]
struct Tracked {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// A connection's place under the cap; given back when dropped (however its task ends).
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    id: u64,
    /// Notified when the connection is to close at once to make room for a new one.
    pub evict: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // An evicted connection was removed (and uncounted) when it was told to close.
        if self.connections.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id).is_some() {
            metrics::gauge!("connections_open").decrement(1.0);
        }
    }
}

impl Connections {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max: max.max(1), next_id: AtomicU64::new(0), open: Mutex::new(HashMap::new()) })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// A slot for a new connection. At the cap, the connection idle the longest (no request in
    /// flight) is told to close and the new one takes its place; if none is idle, `None`: the
    /// caller closes the new connection.
    pub fn admit(self: &Arc<Self>, activity: Arc<Activity>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.max {
            let oldest = open
                .iter()
                .filter_map(|(id, t)| t.activity.idle_since().map(|since| (since, *id)))
                .min()
                .map(|(_, id)| id);
            let Some(id) = oldest else {
                metrics::counter!("connections_shed_total", "reason" => "refused").increment(1);
                return None;
            };
            // Removed now, so that the next accept does not pick it again; its task closes it.
            if let Some(evicted) = open.remove(&id) {
                evicted.evict.notify_one();
                metrics::gauge!("connections_open").decrement(1.0);
            }
            metrics::counter!("connections_shed_total", "reason" => "idle_evicted").increment(1);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        open.insert(id, Tracked { activity, evict: Arc::clone(&evict) });
        metrics::gauge!("connections_open").increment(1.0);
        Some(Slot { connections: Arc::clone(self), id, evict })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::activity::InFlightGuard;

    #[test]
    fn the_cap_keeps_a_reserve() {
        assert_eq!(cap_for(1024), 1024 - 128);
        assert_eq!(cap_for(256), 256 - 64);
        assert_eq!(cap_for(65536), 65536 - 8192);
        assert_eq!(cap_for(10), 16, "never below a usable minimum");
    }

    #[test]
    fn at_the_cap_the_longest_idle_is_evicted_and_busy_ones_never() {
        let connections = Connections::new(2);
        let (a, b) = (Arc::new(Activity::new()), Arc::new(Activity::new()));
        let _busy = InFlightGuard::new(Arc::clone(&a));
        let slot_a = connections.admit(Arc::clone(&a)).unwrap();
        let slot_b = connections.admit(Arc::clone(&b)).unwrap();
        // Full: `b` is idle, `a` is serving a request: `b` goes.
        let slot_c = connections.admit(Arc::new(Activity::new())).expect("room made");
        assert_eq!(connections.len(), 2);
        let evicted = slot_b.evict.clone();
        assert!(futures::FutureExt::now_or_never(evicted.notified()).is_some(), "b was told to close");
        // Its task ends later: dropping its slot must not remove anyone else's.
        drop(slot_b);
        assert_eq!(connections.len(), 2);
        // Full again, `c` is idle: a fourth evicts `c`, never the busy `a`.
        let _d = connections.admit(Arc::new(Activity::new())).expect("room made");
        assert!(futures::FutureExt::now_or_never(slot_c.evict.notified()).is_some());
        drop(slot_c);
        assert!(connections.admit(Arc::new(Activity::new())).is_some());
        drop(slot_a);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let connections = Connections::new(1);
        let a = Arc::new(Activity::new());
        let _busy = InFlightGuard::new(Arc::clone(&a));
        let _slot = connections.admit(a).unwrap();
        assert!(connections.admit(Arc::new(Activity::new())).is_none());
    }
}
