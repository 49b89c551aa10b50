//! The store's alerts, found by key. A slab of alerts plus a hash index of slot numbers:
//! an alert is written once where it lands and never moved by later inserts, its key is
//! not copied for the index, and other indexes (a cluster's alerts) can name it by a small
//! number. A burst of 100k events over 50k alerts is what this is shaped for: a sorted map
//! of 300-byte alerts spent most of that burst comparing long shared key prefixes and
//! shifting alerts within its nodes.

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use crate::model::{Alert, AlertKey};

/// An alert's slot. Stable while the alert is held; reused after it goes.
pub(super) type AlertId = u32;

#[derive(Default)]
pub(super) struct AlertTable {
    slots: Vec<Option<Alert>>,
    /// Empty slots, reused before the slab grows.
    free: Vec<AlertId>,
    /// Slot numbers with the hash of the key of the alert in that slot (kept, so growing
    /// the table does not hash every key again).
    by_key: HashTable<(AlertId, u64)>,
    hasher: RandomState,
}

impl AlertTable {
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    fn hash(&self, key: &AlertKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The alert in a slot that `id`, `upsert` or `iter` named and nothing removed since.
    pub fn at(&self, id: AlertId) -> &Alert {
        self.slots[id as usize]
            .as_ref()
            .expect("the key index names only held slots")
    }

    pub fn id(&self, key: &AlertKey) -> Option<AlertId> {
        let hash = self.hash(key);
        self.by_key
            .find(hash, |&(id, h)| h == hash && self.at(id).key == *key)
            .map(|&(id, _)| id)
    }

    pub fn get(&self, key: &AlertKey) -> Option<&Alert> {
        self.id(key).map(|id| self.at(id))
    }

    pub fn get_mut(&mut self, key: &AlertKey) -> Option<&mut Alert> {
        let id = self.id(key)?;
        self.slots[id as usize].as_mut()
    }

    /// Stores `alert` under its key: in its old slot, returning what it replaces, or in a
    /// new one.
    pub fn upsert(&mut self, alert: Alert) -> (AlertId, Option<Alert>) {
        if let Some(id) = self.id(&alert.key) {
            let old = self.slots[id as usize].replace(alert);
            return (id, old);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(alert);
                id
            }
            None => {
                let id = AlertId::try_from(self.slots.len()).expect("fewer than 4G alerts");
                self.slots.push(Some(alert));
                id
            }
        };
        let hash = self.hash(&self.at(id).key);
        self.by_key.insert_unique(hash, (id, hash), |&(_, h)| h);
        (id, None)
    }

    pub fn remove(&mut self, key: &AlertKey) -> Option<(AlertId, Alert)> {
        let id = self.id(key)?;
        Some((id, self.remove_at(id)))
    }

    /// Takes the alert out of a held slot.
    pub fn remove_at(&mut self, id: AlertId) -> Alert {
        let hash = self.hash(&self.at(id).key);
        if let Ok(entry) = self.by_key.find_entry(hash, |&(other, _)| other == id) {
            entry.remove();
        }
        self.free.push(id);
        self.slots[id as usize].take().expect("a held slot")
    }

    /// Every alert with its slot, in slot order (no meaning beyond being stable).
    pub fn iter(&self) -> impl Iterator<Item = (AlertId, &Alert)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, a)| Some((id as AlertId, a.as_ref()?)))
    }

    pub fn values(&self) -> impl Iterator<Item = &Alert> {
        self.slots.iter().flatten()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Alert> {
        self.slots.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertSource, AlertState, ClusterId, Severity};

    fn alert(n: usize, summary: &str) -> Alert {
        let cluster = ClusterId::new("111122223333", "eu-west-1", "prod-a");
        Alert {
            key: AlertKey::new(
                AlertSource::Alertmanager,
                Some(&cluster),
                "KubePodCrashLooping",
                &n.to_string(),
            ),
            source: AlertSource::Alertmanager,
            cluster: Some(cluster),
            name: "KubePodCrashLooping".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            first_seen: chrono::DateTime::UNIX_EPOCH,
            last_change: chrono::DateTime::UNIX_EPOCH,
            summary: summary.into(),
            labels: Default::default(),
            runbook_url: None,
            ack: None,
        }
    }

    /// Inserts, replacements and removals in a mixed order, checked against a plain map
    /// after every step; freed slots are reused and ids stay put.
    #[test]
    fn agrees_with_a_plain_map_through_inserts_replacements_and_removals() {
        let mut table = AlertTable::default();
        let mut model = std::collections::BTreeMap::new();
        let mut ids = std::collections::HashMap::new();
        for step in 0..3_000usize {
            let n = (step * 7919) % 500;
            let a = alert(n, &format!("step {step}"));
            if step % 3 == 2 {
                let got = table.remove(&a.key).map(|(id, a)| (id, a.summary));
                let want = model.remove(&a.key);
                assert_eq!(got.as_ref().map(|g| &g.1), want.as_ref(), "step {step}");
                if let Some((id, _)) = got {
                    assert_eq!(ids.remove(&a.key), Some(id), "step {step}: removed slot");
                }
            } else {
                let (id, old) = table.upsert(a.clone());
                let want = model.insert(a.key.clone(), a.summary.clone());
                assert_eq!(old.map(|o| o.summary), want, "step {step}");
                if let Some(&before) = ids.get(&a.key) {
                    assert_eq!(id, before, "step {step}: a replaced alert keeps its slot");
                }
                ids.insert(a.key.clone(), id);
                assert_eq!(table.at(id).summary, a.summary);
            }
            assert_eq!(table.len(), model.len(), "step {step}");
        }
        for (key, summary) in &model {
            assert_eq!(table.get(key).map(|a| &a.summary), Some(summary));
            assert_eq!(table.id(key), ids.get(key).copied());
        }
        assert_eq!(table.values().count(), model.len());
        assert!(
            table.slots.len() <= 500,
            "freed slots are reused: {} slots for at most 500 keys",
            table.slots.len()
        );
    }
}
