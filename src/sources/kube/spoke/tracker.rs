//! The summaries of one watched resource, kept by object identity and swapped in whole
//! when a (re-)list completes, so a half-done re-list never shows as objects vanishing.

use std::collections::HashMap;

use kube::runtime::watcher;

/// One watch event, with the object already reduced to its summary. `None` means the
/// object exists but nothing about it is worth keeping (a Ready node is the exception:
/// nodes keep a summary each, to be counted).
#[derive(Debug)]
pub(super) enum Change<S> {
    /// A re-list starts: summaries are buffered until `Listed`.
    Relist,
    Listed(String, Option<S>),
    /// The re-list is complete; objects not listed are gone.
    RelistDone,
    Applied(String, Option<S>),
    Deleted(String),
}

impl<S> Change<S> {
    /// Reduces a watcher event with `summarize`, dropping the object itself.
    pub(super) fn from_event<K>(
        event: watcher::Event<K>,
        key: impl Fn(&K) -> String,
        summarize: impl Fn(&K) -> Option<S>,
    ) -> Self {
        match event {
            watcher::Event::Init => Self::Relist,
            watcher::Event::InitApply(obj) => Self::Listed(key(&obj), summarize(&obj)),
            watcher::Event::InitDone => Self::RelistDone,
            watcher::Event::Apply(obj) => Self::Applied(key(&obj), summarize(&obj)),
            watcher::Event::Delete(obj) => Self::Deleted(key(&obj)),
        }
    }
}

/// At most `max` summaries; over that, the one ranked lowest is dropped.
pub(super) struct Limit<S> {
    pub max: usize,
    pub rank: fn(&S) -> Option<chrono::DateTime<chrono::Utc>>,
}

/// The current summaries of one resource.
pub(super) struct Tracked<S> {
    live: HashMap<String, S>,
    relisting: Option<HashMap<String, S>>,
    limit: Option<Limit<S>>,
    /// A list has completed at least once: until then the summaries mean nothing.
    synced: bool,
}

impl<S: PartialEq> Tracked<S> {
    pub(super) fn new() -> Self {
        Self {
            live: HashMap::new(),
            relisting: None,
            limit: None,
            synced: false,
        }
    }

    /// A tracker that keeps at most `limit.max` summaries.
    pub(super) fn limited(limit: Limit<S>) -> Self {
        Self {
            limit: Some(limit),
            ..Self::new()
        }
    }

    /// Folds one change in; true if what is visible changed.
    pub(super) fn apply(&mut self, change: Change<S>) -> bool {
        match change {
            Change::Relist => {
                self.relisting = Some(HashMap::new());
                false
            }
            Change::Listed(key, summary) => {
                let buffer = self.relisting.get_or_insert_with(HashMap::new);
                if let Some(summary) = summary {
                    buffer.insert(key, summary);
                    enforce(buffer, self.limit.as_ref());
                }
                false
            }
            Change::RelistDone => {
                let listed = self.relisting.take().unwrap_or_default();
                let changed = !self.synced || listed != self.live;
                self.live = listed;
                self.synced = true;
                changed
            }
            Change::Applied(key, Some(summary)) => {
                if self.live.get(&key) == Some(&summary) {
                    return false;
                }
                self.live.insert(key, summary);
                enforce(&mut self.live, self.limit.as_ref());
                true
            }
            Change::Applied(key, None) | Change::Deleted(key) => self.live.remove(&key).is_some(),
        }
    }

    /// Drops the summaries `keep` rejects; true if any was dropped.
    pub(super) fn retain(&mut self, keep: impl Fn(&S) -> bool) -> bool {
        let before = self.live.len();
        self.live.retain(|_, s| keep(s));
        self.live.len() != before
    }

    pub(super) fn len(&self) -> usize {
        self.live.len()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &S> {
        self.live.values()
    }
}

fn enforce<S>(map: &mut HashMap<String, S>, limit: Option<&Limit<S>>) {
    let Some(limit) = limit else { return };
    while map.len() > limit.max {
        let lowest = map
            .iter()
            .min_by_key(|(_, s)| (limit.rank)(s))
            .map(|(k, _)| k.clone());
        match lowest {
            Some(key) => map.remove(&key),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relist_replaces_only_when_done() {
        let mut t: Tracked<u8> = Tracked::new();
        assert!(!t.apply(Change::Listed("a".into(), Some(1))));
        assert!(t.apply(Change::RelistDone));
        assert!(!t.apply(Change::Relist));
        assert!(!t.apply(Change::Listed("b".into(), Some(2))));
        // Mid re-list, the old picture still stands.
        assert_eq!(t.values().copied().collect::<Vec<_>>(), vec![1]);
        assert!(t.apply(Change::RelistDone));
        assert_eq!(t.values().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn limit_drops_the_lowest_ranked() {
        fn rank(s: &i64) -> Option<chrono::DateTime<chrono::Utc>> {
            chrono::DateTime::from_timestamp(*s, 0)
        }
        let mut t = Tracked::limited(Limit { max: 2, rank });
        for (k, v) in [("a", 5), ("b", 1), ("c", 9)] {
            t.apply(Change::Applied(k.into(), Some(v)));
        }
        let mut kept: Vec<i64> = t.values().copied().collect();
        kept.sort();
        assert_eq!(kept, vec![5, 9]);
    }
}
