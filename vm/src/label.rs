//! Information-flow labels: every value carries a [`Label`], a small interned id into the VM's
//! [`LabelTable`]. Id 0 is trusted and public, so the common case costs one compare.

use std::collections::BTreeSet;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// An interned label: an index into the `LabelTable`. `Label::PUBLIC` (0) is trusted/public.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Label(pub u32);

impl Label {
    /// Trusted integrity, readable by everyone: the label of constants and the user's input.
    pub const PUBLIC: Label = Label(0);

    #[inline]
    pub fn is_public(self) -> bool {
        self.0 == 0
    }
}

/// Whether data can be relied on: output of tools, files marked untrusted, web pages... is not.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Integrity {
    #[default]
    Trusted,
    Untrusted,
}

/// The meaning of a label: integrity and confidentiality (`readers: None` = public).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelInfo {
    #[serde(default)]
    pub integrity: Integrity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readers: Option<BTreeSet<String>>,
}

impl LabelInfo {
    /// Trusted and public.
    pub fn public() -> LabelInfo {
        LabelInfo::default()
    }

    /// Untrusted and public.
    pub fn untrusted() -> LabelInfo {
        LabelInfo {
            integrity: Integrity::Untrusted,
            readers: None,
        }
    }

    pub fn is_public(&self) -> bool {
        *self == LabelInfo::default()
    }

    /// The least label above both: untrusted if either is, readers = the intersection.
    pub fn join(&self, other: &LabelInfo) -> LabelInfo {
        let integrity = self.integrity.max(other.integrity);
        let readers = match (&self.readers, &other.readers) {
            (None, r) | (r, None) => r.clone(),
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        };
        LabelInfo { integrity, readers }
    }
}

impl fmt::Display for LabelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.integrity {
            Integrity::Trusted => "trusted",
            Integrity::Untrusted => "untrusted",
        })?;
        if let Some(readers) = &self.readers {
            f.write_str(", readers={")?;
            for (i, r) in readers.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(r)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// A label-lowering instruction as the host journals it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelOp {
    /// `Declassify`: readers set (usually widened).
    Declassify,
    /// `Endorse` or `EndorseNarrow`: integrity raised to trusted.
    Endorse,
}

impl LabelOp {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelOp::Declassify => "declassify",
            LabelOp::Endorse => "endorse",
        }
    }
}

/// One run of a label-lowering instruction (`Declassify`, `Endorse`, `EndorseNarrow`): where
/// it ran and the deep label of the value before and after. The interpreter keeps these until
/// the host takes them ([`crate::Vm::take_label_events`]) and journals them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub task: crate::interp::TaskId,
    /// The function that ran the instruction.
    pub func: String,
    /// The instruction's index in that function, and its source line (0 when unknown).
    pub pc: u32,
    pub line: u32,
    pub op: LabelOp,
    /// Whether this was `EndorseNarrow` (a value checked against a narrow type).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub narrow: bool,
    /// The join of the labels of every node of the value before.
    pub from: LabelInfo,
    /// The join of the labels of every node of the result.
    pub to: LabelInfo,
}

/// The interning table. Serialised as the list of label meanings; the lookup maps are rebuilt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "Vec<LabelInfo>", into = "Vec<LabelInfo>")]
pub struct LabelTable {
    infos: Vec<LabelInfo>,
    ids: FxHashMap<LabelInfo, u32>,
    joins: FxHashMap<(u32, u32), u32>,
}

impl Default for LabelTable {
    fn default() -> Self {
        LabelTable::from(Vec::new())
    }
}

impl From<Vec<LabelInfo>> for LabelTable {
    fn from(mut infos: Vec<LabelInfo>) -> Self {
        // Id 0 must always mean public, whatever a serialised table says.
        if !matches!(infos.first(), Some(i) if i.is_public()) {
            infos.insert(0, LabelInfo::public());
        }
        let mut ids = FxHashMap::default();
        for (i, info) in infos.iter().enumerate() {
            ids.entry(info.clone()).or_insert(i as u32);
        }
        LabelTable {
            infos,
            ids,
            joins: FxHashMap::default(),
        }
    }
}

impl From<LabelTable> for Vec<LabelInfo> {
    fn from(t: LabelTable) -> Self {
        t.infos
    }
}

impl LabelTable {
    /// The id of a label meaning, adding it if new.
    pub fn intern(&mut self, info: &LabelInfo) -> Label {
        if info.is_public() {
            return Label::PUBLIC;
        }
        if let Some(&id) = self.ids.get(info) {
            return Label(id);
        }
        let id = self.infos.len() as u32;
        self.infos.push(info.clone());
        self.ids.insert(info.clone(), id);
        Label(id)
    }

    /// The meaning of a label; an unknown id (impossible for ids this table made) reads as
    /// untrusted, the safe side.
    pub fn info(&self, l: Label) -> LabelInfo {
        self.infos
            .get(l.0 as usize)
            .cloned()
            .unwrap_or_else(LabelInfo::untrusted)
    }

    /// The join of two labels. Equal or public operands take the fast path.
    #[inline]
    pub fn join(&mut self, a: Label, b: Label) -> Label {
        if a == b || b.is_public() {
            a
        } else if a.is_public() {
            b
        } else {
            self.join_slow(a, b)
        }
    }

    #[cold]
    fn join_slow(&mut self, a: Label, b: Label) -> Label {
        let key = (a.0.min(b.0), a.0.max(b.0));
        if let Some(&id) = self.joins.get(&key) {
            return Label(id);
        }
        let joined = self.info(a).join(&self.info(b));
        let id = self.intern(&joined);
        self.joins.insert(key, id.0);
        id
    }

    /// Text of a label as `label_of` shows it: "trusted", "untrusted, readers={alice}".
    pub fn describe(&self, l: Label) -> String {
        self.info(l).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(names: &[&str]) -> LabelInfo {
        LabelInfo {
            integrity: Integrity::Trusted,
            readers: Some(names.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn join_is_untrusted_if_either_and_intersects_readers() {
        let mut t = LabelTable::default();
        let u = t.intern(&LabelInfo::untrusted());
        let ab = t.intern(&readers(&["alice", "bob"]));
        let b = t.intern(&readers(&["bob"]));
        assert_eq!(t.join(Label::PUBLIC, Label::PUBLIC), Label::PUBLIC);
        assert_eq!(t.join(u, Label::PUBLIC), u);
        let j = t.join(ab, u);
        assert_eq!(t.describe(j), "untrusted, readers={alice, bob}");
        let j2 = t.join(j, b);
        assert_eq!(t.describe(j2), "untrusted, readers={bob}");
        assert_eq!(t.join(b, j), j2, "join is cached and symmetric");
        assert_eq!(t.describe(Label::PUBLIC), "trusted");
    }

    #[test]
    fn table_round_trips_through_serde() {
        let mut t = LabelTable::default();
        let u = t.intern(&LabelInfo::untrusted());
        let json = serde_json::to_string(&t).unwrap();
        let mut back: LabelTable = serde_json::from_str(&json).unwrap();
        assert_eq!(back.intern(&LabelInfo::untrusted()), u);
        assert_eq!(back.describe(u), "untrusted");
    }
}
