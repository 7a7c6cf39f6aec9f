//! Typed storage in the contract's own namespace: [`Value`], [`Map`] and [`List`].
//!
//! Keys: every item has a name (`"greeting"`), and [`Value::at`]-style scoping adds typed
//! components (`history` of case 7). The key of an item is `bytes(name) ‖ bytes(component)… ‖
//! kind ‖ suffix`, where `bytes` is the u32-length-prefixed form and `kind` is one byte: `v` a
//! value; `m` a map entry (suffix: the encoded map key); `n` a list's count and `i` a list's
//! item (suffix: the u64 index, big-endian). Two items of different names or kinds never share a
//! key. Host API v1 has no iteration (`docs/contracts.md` §2): a [`List`] keeps a count key and
//! one key per index, so it can be walked; a [`Map`] cannot, so keep a [`List`] of its keys when
//! you need them.
//!
//! Stored values use the typed-argument encoding; bytes that do not decode (written by another
//! version of the contract under the same name) abort with the item's name.

use std::marker::PhantomData;

use crate::codec::{put_arg, put_chunk, Arg};
use crate::{abort, host};

/// The longest key the host accepts (bytes).
pub const MAX_KEY_LEN: usize = 256;
/// The longest value the host accepts (bytes).
pub const MAX_VALUE_LEN: usize = 65_536;

/// The name and scope shared by the three kinds of item.
#[derive(Clone, Debug)]
struct Place {
    name: &'static str,
    scope: Vec<u8>,
}

impl Place {
    const fn new(name: &'static str) -> Self {
        Place {
            name,
            scope: Vec::new(),
        }
    }

    fn at<K: Arg>(&self, component: &K) -> Self {
        let mut scope = self.scope.clone();
        put_arg(&mut scope, component);
        Place {
            name: self.name,
            scope,
        }
    }

    fn key(&self, kind: u8, suffix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(4 + self.name.len() + self.scope.len() + 1 + suffix.len());
        put_chunk(&mut key, self.name.as_bytes());
        key.extend_from_slice(&self.scope);
        key.push(kind);
        key.extend_from_slice(suffix);
        if key.len() > MAX_KEY_LEN {
            abort(&format!(
                "the storage key of `{}` is {} bytes, over the host's {MAX_KEY_LEN}",
                self.name,
                key.len()
            ));
        }
        key
    }

    fn read<T: Arg>(&self, key: &[u8]) -> Option<T> {
        let bytes = host::host_storage_read(key)?;
        match T::decode(&bytes) {
            Ok(v) => Some(v),
            Err(e) => abort(&format!(
                "stored `{}` does not decode as {}: {e}",
                self.name,
                T::type_name()
            )),
        }
    }

    fn write<T: Arg>(&self, key: &[u8], value: &T) {
        let bytes = value.encode();
        if bytes.len() > MAX_VALUE_LEN {
            abort(&format!(
                "the value of `{}` is {} bytes, over the host's {MAX_VALUE_LEN}",
                self.name,
                bytes.len()
            ));
        }
        host::host_storage_write(key, &bytes);
    }
}

/// One stored value: `const GREETING: Value<String> = Value::new("greeting");`.
#[derive(Clone, Debug)]
pub struct Value<T> {
    place: Place,
    ty: PhantomData<fn() -> T>,
}

impl<T: Arg> Value<T> {
    /// A value named `name` (names must be distinct among a contract's items).
    pub const fn new(name: &'static str) -> Self {
        Value {
            place: Place::new(name),
            ty: PhantomData,
        }
    }

    /// The value of the same name scoped by `component` (one per case, per licence…).
    pub fn at<K: Arg>(&self, component: &K) -> Self {
        Value {
            place: self.place.at(component),
            ty: PhantomData,
        }
    }

    /// Returns the stored value, or `None` when it was never set (or was removed).
    pub fn get(&self) -> Option<T> {
        self.place.read(&self.place.key(b'v', &[]))
    }

    /// Stores `value`.
    pub fn set(&self, value: &T) {
        self.place.write(&self.place.key(b'v', &[]), value);
    }

    /// Removes the value.
    pub fn remove(&self) {
        host::host_storage_remove(&self.place.key(b'v', &[]));
    }
}

/// A stored map from `K` to `V` (no iteration: see the module's documentation).
#[derive(Clone, Debug)]
pub struct Map<K, V> {
    place: Place,
    ty: PhantomData<fn() -> (K, V)>,
}

impl<K: Arg, V: Arg> Map<K, V> {
    /// A map named `name`.
    pub const fn new(name: &'static str) -> Self {
        Map {
            place: Place::new(name),
            ty: PhantomData,
        }
    }

    /// The map of the same name scoped by `component`.
    pub fn at<C: Arg>(&self, component: &C) -> Self {
        Map {
            place: self.place.at(component),
            ty: PhantomData,
        }
    }

    /// Returns the value stored under `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.place.read(&self.place.key(b'm', &key.encode()))
    }

    /// Returns whether `key` has a value.
    pub fn contains(&self, key: &K) -> bool {
        host::host_storage_read(&self.place.key(b'm', &key.encode())).is_some()
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: &K, value: &V) {
        self.place
            .write(&self.place.key(b'm', &key.encode()), value);
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) {
        host::host_storage_remove(&self.place.key(b'm', &key.encode()));
    }
}

/// A stored list: a count key and one key per index (push, get, set; no removal in the middle).
#[derive(Clone, Debug)]
pub struct List<T> {
    place: Place,
    ty: PhantomData<fn() -> T>,
}

impl<T: Arg> List<T> {
    /// A list named `name`.
    pub const fn new(name: &'static str) -> Self {
        List {
            place: Place::new(name),
            ty: PhantomData,
        }
    }

    /// The list of the same name scoped by `component` (the history of one case).
    pub fn at<C: Arg>(&self, component: &C) -> Self {
        List {
            place: self.place.at(component),
            ty: PhantomData,
        }
    }

    /// Returns the number of items.
    pub fn len(&self) -> u64 {
        self.place
            .read::<u64>(&self.place.key(b'n', &[]))
            .unwrap_or(0)
    }

    /// Returns whether the list has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns item `index`, or `None` past the end.
    pub fn get(&self, index: u64) -> Option<T> {
        if index >= self.len() {
            return None;
        }
        self.item(index)
    }

    fn item(&self, index: u64) -> Option<T> {
        self.place.read(&self.place.key(b'i', &index.to_be_bytes()))
    }

    /// Appends `value` and returns its index.
    pub fn push(&self, value: &T) -> u64 {
        let index = self.len();
        self.place
            .write(&self.place.key(b'i', &index.to_be_bytes()), value);
        self.place.write(&self.place.key(b'n', &[]), &(index + 1));
        index
    }

    /// Replaces item `index`; aborts naming the list when `index` is past the end.
    pub fn set(&self, index: u64, value: &T) {
        let len = self.len();
        if index >= len {
            abort(&format!(
                "index {index} is past the end of `{}` ({len} items)",
                self.place.name
            ));
        }
        self.place
            .write(&self.place.key(b'i', &index.to_be_bytes()), value);
    }

    /// Returns every item, in order (one storage read per item: mind the fuel).
    pub fn to_vec(&self) -> Vec<T> {
        let len = self.len();
        let mut items = Vec::new();
        for i in 0..len {
            match self.item(i) {
                Some(v) => items.push(v),
                None => abort(&format!(
                    "item {i} of `{}` is missing (its count is {len})",
                    self.place.name
                )),
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn items_of_different_names_kinds_and_scopes_do_not_collide() {
        testing::reset();
        let a: Value<u64> = Value::new("a");
        let ab: Value<u64> = Value::new("ab");
        let map: Map<String, u64> = Map::new("a");
        let list: List<u64> = List::new("a");
        a.set(&1);
        ab.set(&2);
        map.set(&String::new(), &3);
        list.push(&4);
        a.at(&7u64).set(&5);
        assert_eq!(a.get(), Some(1));
        assert_eq!(ab.get(), Some(2));
        assert_eq!(map.get(&String::new()), Some(3));
        assert_eq!(list.to_vec(), vec![4]);
        assert_eq!(a.at(&7u64).get(), Some(5));
        assert_eq!(a.at(&8u64).get(), None);
        // Six keys: a, ab, the map entry, the list's count and item, a at 7.
        assert_eq!(testing::storage().len(), 6);
        // The layout is part of the contract's state format: pin one key.
        assert!(testing::storage().contains_key(&b"\x00\x00\x00\x01av"[..]));
    }

    #[test]
    fn a_list_counts_and_indexes() {
        testing::reset();
        let list: List<String> = List::new("history");
        assert!(list.is_empty());
        assert_eq!(list.push(&"opened".to_string()), 0);
        assert_eq!(list.push(&"approved".to_string()), 1);
        assert_eq!(list.len(), 2);
        assert_eq!(list.get(1).as_deref(), Some("approved"));
        assert_eq!(list.get(2), None);
        list.set(0, &"created".to_string());
        assert_eq!(list.to_vec(), vec!["created", "approved"]);
    }

    #[test]
    #[should_panic(expected = "index 3 is past the end of `history` (0 items)")]
    fn setting_past_the_end_aborts_naming_the_list() {
        testing::reset();
        List::<u64>::new("history").set(3, &1);
    }

    #[test]
    #[should_panic(expected = "stored `n` does not decode as u64: a u64 is 8 bytes, got 4")]
    fn a_stored_value_of_another_type_aborts_naming_it() {
        testing::reset();
        Value::<u32>::new("n").set(&1);
        Value::<u64>::new("n").get();
    }

    #[test]
    #[should_panic(expected = "over the host's 256")]
    fn an_oversized_key_aborts() {
        testing::reset();
        let map: Map<String, u64> = Map::new("m");
        map.set(&"k".repeat(300), &1);
    }
}
