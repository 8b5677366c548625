//! Labels as the journal writes them (`trusted`, `untrusted, readers={a, b}`), with the join of
//! spec/security.md §2: untrusted if either side is, readers intersected (public = no set).

use std::collections::BTreeSet;

/// A label: integrity and readers (`None` = public).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Label {
    pub untrusted: bool,
    pub readers: Option<BTreeSet<String>>,
}

impl Label {
    /// The bottom of the lattice: trusted and public.
    pub fn bottom() -> Label {
        Label::default()
    }

    pub fn untrusted() -> Label {
        Label {
            untrusted: true,
            readers: None,
        }
    }

    pub fn with_readers(mut self, readers: &[&str]) -> Label {
        self.readers = Some(readers.iter().map(|r| r.to_string()).collect());
        self
    }

    /// The join (least upper bound).
    pub fn join(&self, other: &Label) -> Label {
        let readers = match (&self.readers, &other.readers) {
            (None, r) | (r, None) => r.clone(),
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        };
        Label {
            untrusted: self.untrusted || other.untrusted,
            readers,
        }
    }

    /// Whether `principal` may see a value with this label.
    pub fn readable_by(&self, principal: &str) -> bool {
        self.readers.as_ref().is_none_or(|r| r.contains(principal))
    }

    /// Parses the journal's text form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Label> {
        let (integrity, rest) = match text.split_once(", readers={") {
            Some((i, r)) => (i, Some(r.strip_suffix('}')?)),
            None => (text, None),
        };
        let untrusted = match integrity.trim() {
            "trusted" => false,
            "untrusted" => true,
            _ => return None,
        };
        let readers = rest.map(|r| {
            r.split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        });
        Some(Label { untrusted, readers })
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.untrusted {
            "untrusted"
        } else {
            "trusted"
        })?;
        if let Some(r) = &self.readers {
            let names: Vec<&str> = r.iter().map(String::as_str).collect();
            write!(f, ", readers={{{}}}", names.join(", "))?;
        }
        Ok(())
    }
}
