//! The last good value of each secret read from Vault, and when Vault may next be asked for it:
//! fresh values are served from memory, and while Vault cannot be reached the last good value
//! stands in (stale-if-error) and each secret is asked for at most once per back-off window.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long values live and how often an unreachable Vault is asked (from `VaultSettings`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timings {
    pub(super) refresh: Duration,
    pub(super) max_stale: Duration,
    pub(super) retry_every: Duration,
    /// How long one read may take: while one caller reads, the others serve the last value.
    pub(super) timeout: Duration,
}

/// What was last read of each secret: a `V` (the service's: the value and the one it replaced).
pub(super) struct Values<V> {
    entries: Mutex<Entries<V>>,
}

impl<V> Default for Values<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                by_name: HashMap::new(),
                changes: 0,
            }),
        }
    }
}

struct Entries<V> {
    by_name: HashMap<String, Entry<V>>,
    /// Counts writes and refusals: a read that began before one does not keep its value,
    /// which may be the one just replaced.
    changes: u64,
}

struct Entry<V> {
    /// `None` for a secret no read has yet returned.
    value: Option<V>,
    read: Instant,
    /// Vault could not be reached: not asked again before then.
    retry_at: Option<Instant>,
    /// A caller is reading it: the others do not ask too until then.
    reading_until: Option<Instant>,
}

/// What a caller does for a secret.
pub(super) enum Lookup<V> {
    /// Serve this value without asking Vault.
    Serve(V),
    /// Vault could not be reached moments ago and there is nothing to serve: fail without
    /// asking.
    Unreachable,
    /// Ask Vault, then report with [`Values::read`] or [`Values::unreachable`].
    Ask(Ticket),
}

/// A read in progress, begun at `at`.
pub(super) struct Ticket {
    at: Instant,
    changes: u64,
}

impl<V: Clone> Values<V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lookup(&self, name: &str, now: Instant, timings: Timings) -> Lookup<V> {
        let mut entries = self.lock();
        let changes = entries.changes;
        let entry = entries.by_name.entry(name.to_owned()).or_insert(Entry {
            value: None,
            read: now,
            retry_at: None,
            reading_until: None,
        });
        let servable = entry
            .value
            .as_ref()
            .filter(|_| now < entry.read + timings.max_stale)
            .cloned();
        let fresh = now < entry.read + timings.refresh;
        let backing_off = entry.retry_at.is_some_and(|at| now < at);
        let being_read = entry.reading_until.is_some_and(|until| now < until);
        match servable {
            Some(value) if fresh || backing_off || being_read => Lookup::Serve(value),
            None if backing_off => Lookup::Unreachable,
            _ => {
                entry.reading_until = Some(now + timings.timeout);
                Lookup::Ask(Ticket { at: now, changes })
            }
        }
    }

    /// Vault answered with `value`: kept, unless a write or refusal came in meanwhile.
    pub(super) fn read(&self, name: &str, value: &V, ticket: &Ticket) {
        let mut entries = self.lock();
        if entries.changes != ticket.changes {
            return;
        }
        entries.by_name.insert(
            name.to_owned(),
            Entry {
                value: Some(value.clone()),
                read: ticket.at,
                retry_at: None,
                reading_until: None,
            },
        );
    }

    /// Vault could not be reached: no new ask before `retry_every` has passed; the last good
    /// value, if it may still be served.
    pub(super) fn unreachable(&self, name: &str, now: Instant, timings: Timings) -> Option<V> {
        let mut entries = self.lock();
        let entry = entries.by_name.get_mut(name)?;
        entry.retry_at = Some(now + timings.retry_every);
        entry.reading_until = None;
        if entry.value.is_some() && now >= entry.read + timings.max_stale {
            entry.value = None;
        }
        entry.value.clone()
    }

    /// Forgets `name`: it was written, or Vault refused it.
    pub(super) fn forget(&self, name: &str) {
        let mut entries = self.lock();
        entries.by_name.remove(name);
        entries.changes += 1;
    }

    /// Each secret served stale because Vault could not be reached, with how long it may still
    /// be served.
    pub(super) fn stale(&self, now: Instant, timings: Timings) -> Vec<(String, Duration)> {
        let entries = self.lock();
        let mut stale: Vec<_> = entries
            .by_name
            .iter()
            .filter(|(_, entry)| entry.retry_at.is_some() && entry.value.is_some())
            .map(|(name, entry)| {
                let until = entry.read + timings.max_stale;
                (name.clone(), until.saturating_duration_since(now))
            })
            .collect();
        stale.sort();
        stale
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;

    type Values = super::Values<SecretString>;
    type Lookup = super::Lookup<SecretString>;

    const TIMINGS: Timings = Timings {
        refresh: Duration::from_secs(60),
        max_stale: Duration::from_secs(600),
        retry_every: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
    };

    fn served(lookup: Lookup) -> Option<String> {
        match lookup {
            Lookup::Serve(value) => Some(value.expose_secret().to_owned()),
            Lookup::Unreachable | Lookup::Ask(_) => None,
        }
    }

    fn ask(values: &Values, now: Instant) -> Ticket {
        match values.lookup("k", now, TIMINGS) {
            Lookup::Ask(ticket) => ticket,
            Lookup::Serve(_) | Lookup::Unreachable => panic!("expected to ask Vault"),
        }
    }

    #[test]
    fn a_fresh_value_is_served_and_an_old_one_read_again_by_one_caller_only() {
        let values = Values::default();
        let t0 = Instant::now();
        let ticket = ask(&values, t0);
        values.read("k", &SecretString::from("v1"), &ticket);
        assert_eq!(
            served(values.lookup("k", t0 + Duration::from_secs(59), TIMINGS)),
            Some("v1".into())
        );

        let later = t0 + Duration::from_secs(61);
        let _reading = ask(&values, later);
        assert_eq!(
            served(values.lookup("k", later, TIMINGS)),
            Some("v1".into()),
            "while one caller reads, the others serve the last value"
        );
        assert!(
            matches!(values.lookup("k", later + TIMINGS.timeout, TIMINGS), Lookup::Ask(_)),
            "a read that never reported does not hold the others off for longer than a timeout"
        );
    }

    #[test]
    fn an_unreachable_vault_is_asked_once_per_window_and_stale_values_end() {
        let values = Values::default();
        let t0 = Instant::now();
        let ticket = ask(&values, t0);
        values.read("k", &SecretString::from("v1"), &ticket);

        let t1 = t0 + Duration::from_secs(100);
        let _ = ask(&values, t1);
        let stale = values.unreachable("k", t1, TIMINGS);
        assert_eq!(stale.map(|v| v.expose_secret().to_owned()), Some("v1".into()));
        assert_eq!(
            values.stale(t1, TIMINGS),
            vec![("k".to_owned(), Duration::from_secs(500))]
        );
        assert_eq!(
            served(values.lookup("k", t1 + Duration::from_secs(4), TIMINGS)),
            Some("v1".into())
        );
        assert!(matches!(
            values.lookup("k", t1 + Duration::from_secs(5), TIMINGS),
            Lookup::Ask(_)
        ));

        let t2 = t0 + TIMINGS.max_stale;
        assert!(
            values.unreachable("k", t2, TIMINGS).is_none(),
            "served no longer than max_stale"
        );
        assert!(matches!(
            values.lookup("k", t2 + Duration::from_secs(1), TIMINGS),
            Lookup::Unreachable
        ));
    }

    #[test]
    fn a_secret_never_read_backs_off_too() {
        let values = Values::default();
        let t0 = Instant::now();
        let _ = ask(&values, t0);
        assert!(values.unreachable("k", t0, TIMINGS).is_none());
        assert!(matches!(
            values.lookup("k", t0 + Duration::from_secs(1), TIMINGS),
            Lookup::Unreachable
        ));
        assert!(
            values.stale(t0, TIMINGS).is_empty(),
            "nothing is served, so nothing is stale"
        );
    }

    #[test]
    fn a_read_begun_before_a_write_does_not_keep_its_value() {
        let values = Values::default();
        let t0 = Instant::now();
        let ticket = ask(&values, t0);
        values.forget("k");
        values.read("k", &SecretString::from("replaced"), &ticket);
        assert!(matches!(values.lookup("k", t0, TIMINGS), Lookup::Ask(_)));
    }
}
