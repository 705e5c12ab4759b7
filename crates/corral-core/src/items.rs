//! Lists with at most one primary item: account domains, contact emails and contact phone
//! numbers. One set of rules serves all three (docs/CONTRACT.md §4.2, §4.3, §7.6).

use crate::error::{CoreError, CoreResult};

/// An item of such a list.
pub trait ListItem {
    /// What identifies the item in its list (a normalised domain, an email's matching key).
    fn key(&self) -> String;
    fn is_primary(&self) -> bool;
    fn set_primary(&mut self, primary: bool);
    /// When it was added: removing the primary promotes the oldest remaining item.
    fn added_at(&self) -> i64;
}

fn promote_oldest<T: ListItem>(items: &mut [T]) {
    if let Some(oldest) = items.iter_mut().min_by_key(|i| i.added_at()) {
        oldest.set_primary(true);
    }
}

/// Makes `new` the primary, replacing the current primary (the v1 `domain` / `email` /
/// `phone` semantics): the old primary is removed unless it is `new`; `new` is added, or
/// promoted if already present. With `None` the primary is removed and the oldest remaining
/// item promoted.
pub fn replace_primary<T: ListItem>(items: &mut Vec<T>, new: Option<T>) {
    if let Some(n) = &new
        && items.iter().any(|i| i.is_primary() && i.key() == n.key())
    {
        return;
    }
    items.retain(|i| !i.is_primary());
    match new {
        Some(mut n) => match items.iter_mut().find(|i| i.key() == n.key()) {
            Some(existing) => existing.set_primary(true),
            None => {
                n.set_primary(true);
                items.push(n);
            }
        },
        None => promote_oldest(items),
    }
}

/// Adds an item, which becomes primary when the list has none. Returns false (and changes
/// nothing) when an item with the same key is already there.
pub fn add<T: ListItem>(items: &mut Vec<T>, mut item: T) -> bool {
    if items.iter().any(|i| i.key() == item.key()) {
        return false;
    }
    item.set_primary(!items.iter().any(ListItem::is_primary));
    items.push(item);
    true
}

/// Promotes the item with `key` (demoting the old primary), or with `false` leaves the list
/// without a primary if it was the primary. Returns whether anything changed.
pub fn set_primary<T: ListItem>(items: &mut [T], key: &str, primary: bool) -> CoreResult<bool> {
    let target = items.iter().position(|i| i.key() == key).ok_or_else(CoreError::record_not_found)?;
    if items[target].is_primary() == primary {
        return Ok(false);
    }
    for (n, item) in items.iter_mut().enumerate() {
        let now_primary = if primary { n == target } else { item.is_primary() && n != target };
        item.set_primary(now_primary);
    }
    Ok(true)
}

/// Removes the item with `key`; removing the primary promotes the oldest remaining one.
pub fn remove<T: ListItem>(items: &mut Vec<T>, key: &str) -> CoreResult<()> {
    let target = items.iter().position(|i| i.key() == key).ok_or_else(CoreError::record_not_found)?;
    let was_primary = items[target].is_primary();
    items.remove(target);
    if was_primary {
        promote_oldest(items);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AccountDomain;

    fn d(name: &str, primary: bool, at: i64) -> AccountDomain {
        AccountDomain { domain_name: name.into(), is_primary: primary, added_at: at }
    }

    #[test]
    fn replacing_the_primary_follows_v1_semantics() {
        let mut ds = vec![d("a.com", true, 1), d("b.com", false, 2)];
        replace_primary(&mut ds, Some(d("c.com", false, 3)));
        assert_eq!(ds, vec![d("b.com", false, 2), d("c.com", true, 3)]);
        replace_primary(&mut ds, Some(d("b.com", false, 4)));
        assert_eq!(ds, vec![d("b.com", true, 2)]);
        replace_primary(&mut ds, Some(d("b.com", false, 5)));
        assert_eq!(ds, vec![d("b.com", true, 2)]);
        let mut ds = vec![d("a.com", true, 1), d("c.com", false, 3), d("b.com", false, 2)];
        replace_primary(&mut ds, None);
        assert_eq!(ds, vec![d("c.com", false, 3), d("b.com", true, 2)]);
    }

    #[test]
    fn sub_resource_operations_keep_one_primary() {
        let mut ds = Vec::new();
        assert!(add(&mut ds, d("a.com", false, 1)));
        assert!(!add(&mut ds, d("a.com", false, 2)));
        assert!(add(&mut ds, d("b.com", true, 3)));
        assert_eq!(ds, vec![d("a.com", true, 1), d("b.com", false, 3)]);
        assert!(set_primary(&mut ds, "b.com", true).unwrap());
        assert_eq!(ds, vec![d("a.com", false, 1), d("b.com", true, 3)]);
        assert!(set_primary(&mut ds, "b.com", false).unwrap());
        assert!(ds.iter().all(|x| !x.is_primary));
        assert!(set_primary(&mut ds, "c.com", true).is_err());
        assert!(add(&mut ds, d("c.com", false, 4)));
        assert!(ds[2].is_primary, "with no primary, a new item becomes primary");
        remove(&mut ds, "c.com").unwrap();
        assert_eq!(ds, vec![d("a.com", true, 1), d("b.com", false, 3)]);
        remove(&mut ds, "b.com").unwrap();
        assert_eq!(ds, vec![d("a.com", true, 1)]);
        assert!(remove(&mut ds, "zzz.com").is_err());
    }
}
