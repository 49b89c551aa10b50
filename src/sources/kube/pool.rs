//! At most `pool_size` clusters connected at once, and none held long after it stops
//! mattering.
//!
//! A cluster is *of interest* while the app says so (on screen, firing alerts, in a wave,
//! focused). One that stops being of interest keeps its slot for `idle` (so moving the
//! cursor away and back does not reconnect), then closes. A new cluster of interest takes
//! a free slot, else the slot of the least recently interesting idle one. It never pushes
//! out another cluster of interest, except for the focused cluster, which takes the slot
//! of the lowest-ranked one: what the user is looking at is always connected.
//!
//! Pure bookkeeping: the caller passes the time and opens and closes the connections.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::ClusterId;

/// The open connections (`T`), by cluster.
#[derive(Debug)]
pub struct Pool<T> {
    capacity: usize,
    idle: Duration,
    slots: HashMap<ClusterId, Slot<T>>,
}

#[derive(Debug)]
struct Slot<T> {
    value: T,
    /// Position in the current interest list (0 = focused), `None` when not of interest.
    rank: Option<usize>,
    /// The last time it was of interest; its idle countdown starts here.
    last_interest: Instant,
}

impl<T> Pool<T> {
    /// A pool of at most `capacity` connections (at least one), closing idle ones after
    /// `idle`.
    pub fn new(capacity: usize, idle: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            idle,
            slots: HashMap::new(),
        }
    }

    /// How many connections may be open at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The clusters with a slot.
    pub fn ids(&self) -> Vec<ClusterId> {
        let mut ids: Vec<ClusterId> = self.slots.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether `id` has a slot.
    pub fn contains(&self, id: &ClusterId) -> bool {
        self.slots.contains_key(id)
    }

    /// The connection of `id`.
    pub fn get_mut(&mut self, id: &ClusterId) -> Option<&mut T> {
        self.slots.get_mut(id).map(|s| &mut s.value)
    }

    /// Takes `id` out (its connection failed, or its cluster left the fleet).
    pub fn remove(&mut self, id: &ClusterId) -> Option<T> {
        self.slots.remove(id).map(|s| s.value)
    }

    /// Records the clusters of interest now, most important first, with the focused
    /// cluster at the head when `focused`. Open clusters in the list are refreshed; the
    /// others start (or continue) their idle countdown.
    pub fn set_interest(&mut self, interest: &[ClusterId], focused: bool, now: Instant) {
        // Rank 0 is the focused cluster's alone.
        let first = usize::from(!focused);
        for slot in self.slots.values_mut() {
            // Of interest until now: its idle countdown starts now.
            if slot.rank.take().is_some() {
                slot.last_interest = now;
            }
        }
        for (rank, id) in interest.iter().enumerate() {
            if let Some(slot) = self.slots.get_mut(id) {
                // The first mention ranks it.
                if slot.rank.is_none() {
                    slot.rank = Some(first + rank);
                }
                slot.last_interest = now;
            }
        }
    }

    /// Whether [`Self::admit`] would find a slot (`focused`: may push out another cluster
    /// of interest).
    pub fn has_room(&self, focused: bool) -> bool {
        self.slots.len() < self.capacity
            || self.slots.values().any(|s| s.rank.is_none())
            || (focused && self.slots.values().any(|s| s.rank != Some(0)))
    }

    /// Gives `id` a slot holding `value`, as cluster of interest number `rank` (0 is the
    /// focused one). Returns the connections pushed out to make room, which the caller
    /// closes, or gives `value` back when there is no room.
    pub fn admit(
        &mut self,
        id: ClusterId,
        value: T,
        rank: usize,
        now: Instant,
    ) -> Result<Vec<(ClusterId, T)>, T> {
        if let Some(slot) = self.slots.get_mut(&id) {
            // Already open: keep the connection there is.
            slot.rank = Some(rank);
            slot.last_interest = now;
            return Err(value);
        }
        let mut evicted = Vec::new();
        while self.slots.len() >= self.capacity {
            let Some(victim) = self.victim(rank == 0) else {
                return Err(value);
            };
            if let Some(slot) = self.slots.remove(&victim) {
                evicted.push((victim, slot.value));
            }
        }
        self.slots.insert(
            id,
            Slot {
                value,
                rank: Some(rank),
                last_interest: now,
            },
        );
        Ok(evicted)
    }

    /// The slot to give up: the least recently interesting idle one; for the focused
    /// cluster, failing that, the lowest-ranked cluster of interest.
    fn victim(&self, focused: bool) -> Option<ClusterId> {
        let idle = self
            .slots
            .iter()
            .filter(|(_, s)| s.rank.is_none())
            .min_by_key(|(id, s)| (s.last_interest, (*id).clone()))
            .map(|(id, _)| id.clone());
        if idle.is_some() || !focused {
            return idle;
        }
        self.slots
            .iter()
            .filter(|(_, s)| s.rank != Some(0))
            .max_by_key(|(id, s)| (s.rank, (*id).clone()))
            .map(|(id, _)| id.clone())
    }

    /// Closes the connections idle for `idle` or longer: they are returned for the caller
    /// to stop.
    pub fn expire(&mut self, now: Instant) -> Vec<(ClusterId, T)> {
        let due: Vec<ClusterId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.rank.is_none() && now >= s.last_interest + self.idle)
            .map(|(id, _)| id.clone())
            .collect();
        let mut closed: Vec<(ClusterId, T)> = due
            .into_iter()
            .filter_map(|id| self.slots.remove(&id).map(|s| (id, s.value)))
            .collect();
        closed.sort_by(|a, b| a.0.cmp(&b.0));
        closed
    }

    /// When the next idle connection is due to close.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|s| s.rank.is_none())
            .map(|s| s.last_interest + self.idle)
            .min()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(300);

    fn ids(n: usize) -> Vec<ClusterId> {
        (0..n)
            .map(|i| ClusterId::new("prod", "us-east-1", format!("c{i:02}")))
            .collect()
    }

    #[test]
    fn never_more_open_than_the_capacity_and_interest_never_pushes_out_interest() {
        let t0 = Instant::now();
        let mut pool = Pool::new(20, IDLE);
        let all = ids(25);
        pool.set_interest(&all, false, t0);
        let mut refused = Vec::new();
        for (rank, id) in all.iter().enumerate() {
            match pool.admit(id.clone(), rank, rank + 1, t0) {
                Ok(evicted) => assert!(evicted.is_empty()),
                Err(_) => refused.push(id.clone()),
            }
            assert!(pool.len() <= 20);
        }
        assert_eq!(pool.len(), 20);
        assert_eq!(refused, all[20..]);
        assert!(!pool.has_room(false));
    }

    #[test]
    fn idle_connections_close_at_the_idle_deadline_and_not_before() {
        let t0 = Instant::now();
        let mut pool = Pool::new(20, IDLE);
        let all = ids(20);
        pool.set_interest(&all, false, t0);
        for (rank, id) in all.iter().enumerate() {
            pool.admit(id.clone(), (), rank, t0).unwrap();
        }
        // A minute later only the first five still matter.
        let t1 = t0 + Duration::from_secs(60);
        pool.set_interest(&all[..5], false, t1);
        // The countdown starts when interest ends, not when it last began.
        assert_eq!(pool.next_expiry(), Some(t1 + IDLE));
        pool.set_interest(&all[..5], false, t1 + Duration::from_secs(30));
        assert_eq!(pool.next_expiry(), Some(t1 + IDLE));
        assert!(pool.expire(t1 + IDLE - Duration::from_secs(1)).is_empty());
        let closed: Vec<ClusterId> = pool
            .expire(t1 + IDLE)
            .into_iter()
            .map(|(id, ())| id)
            .collect();
        assert_eq!(closed, all[5..]);
        assert_eq!(pool.len(), 5);
        assert_eq!(pool.next_expiry(), None);
        // Still of interest much later: still open.
        pool.set_interest(&all[..5], false, t0 + 10 * IDLE);
        assert!(pool.expire(t0 + 10 * IDLE).is_empty());
    }

    #[test]
    fn a_new_cluster_of_interest_takes_the_least_recently_interesting_idle_slot() {
        let t0 = Instant::now();
        let mut pool = Pool::new(3, IDLE);
        let all = ids(4);
        for (i, id) in all[..3].iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            pool.set_interest(std::slice::from_ref(id), false, at);
            pool.admit(id.clone(), i, 1, at).unwrap();
        }
        // Interest moved on: c00 was last of interest at t0+1s, c01 at t0+2s, c02 at t1.
        let t1 = t0 + Duration::from_secs(10);
        pool.set_interest(&all[3..], false, t1);
        let evicted = pool.admit(all[3].clone(), 3, 1, t1).unwrap();
        assert_eq!(evicted, [(all[0].clone(), 0)]);
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn the_focused_cluster_takes_the_slot_of_the_lowest_ranked_one() {
        let t0 = Instant::now();
        let mut pool = Pool::new(3, IDLE);
        let all = ids(4);
        // c03 focused, then the three open ones.
        let interest = [
            all[3].clone(),
            all[0].clone(),
            all[1].clone(),
            all[2].clone(),
        ];
        pool.set_interest(&interest, true, t0);
        for (i, id) in all[..3].iter().enumerate() {
            pool.admit(id.clone(), i, i + 1, t0).unwrap();
        }
        assert!(!pool.has_room(false));
        assert!(pool.has_room(true));
        let evicted = pool.admit(all[3].clone(), 3, 0, t0).unwrap();
        assert_eq!(evicted, [(all[2].clone(), 2)]);
        assert!(pool.contains(&all[3]));
    }

    #[test]
    fn admitting_an_open_cluster_keeps_its_connection() {
        let t0 = Instant::now();
        let mut pool = Pool::new(3, IDLE);
        let id = ids(1).remove(0);
        pool.admit(id.clone(), "first", 0, t0).unwrap();
        assert_eq!(pool.admit(id.clone(), "second", 0, t0), Err("second"));
        assert_eq!(pool.get_mut(&id), Some(&mut "first"));
        assert_eq!(pool.remove(&id), Some("first"));
        assert!(pool.is_empty());
    }
}
