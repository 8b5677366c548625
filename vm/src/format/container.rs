//! The numbers shared by the encoder and the decoder: section ids and names, and the tag bytes
//! of constants, types and optional fields (spec/bytecode.md, "Container").

/// A section of the container, in the order it must appear. The discriminant is the section id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum SectionId {
    Strings = 1,
    Constants = 2,
    Types = 3,
    Natives = 4,
    Functions = 5,
    Exports = 6,
    Entry = 7,
    Files = 8,
    /// The model slots (since version 2).
    Models = 9,
    /// Reserved for tool declarations of a later format version.
    Tools = 10,
    /// The capability manifest (since version 3).
    Manifest = 11,
}

impl SectionId {
    /// The sections a version 3 container holds, each exactly once, in this order.
    pub const REQUIRED: [SectionId; 10] = [
        SectionId::Strings,
        SectionId::Constants,
        SectionId::Types,
        SectionId::Natives,
        SectionId::Functions,
        SectionId::Exports,
        SectionId::Entry,
        SectionId::Files,
        SectionId::Models,
        SectionId::Manifest,
    ];

    pub fn from_byte(b: u8) -> Option<SectionId> {
        Some(match b {
            1 => SectionId::Strings,
            2 => SectionId::Constants,
            3 => SectionId::Types,
            4 => SectionId::Natives,
            5 => SectionId::Functions,
            6 => SectionId::Exports,
            7 => SectionId::Entry,
            8 => SectionId::Files,
            9 => SectionId::Models,
            10 => SectionId::Tools,
            11 => SectionId::Manifest,
            _ => return None,
        })
    }

    /// Whether the id is reserved for a later version (this version neither writes nor reads it).
    pub fn is_reserved(self) -> bool {
        self == SectionId::Tools
    }

    pub const fn name(self) -> &'static str {
        match self {
            SectionId::Strings => "strings",
            SectionId::Constants => "constants",
            SectionId::Types => "types",
            SectionId::Natives => "natives",
            SectionId::Functions => "functions",
            SectionId::Exports => "exports",
            SectionId::Entry => "entry",
            SectionId::Files => "files",
            SectionId::Models => "models",
            SectionId::Tools => "tools",
            SectionId::Manifest => "manifest",
        }
    }
}

/// Size of the header: magic (4), version (2), flags (2).
pub const HEADER_LEN: usize = 8;
/// Size of a section header: id (1), payload length (4).
pub const SECTION_HEADER_LEN: usize = 5;

/// Tags of [`crate::format::Constant`].
pub mod const_tag {
    pub const INT: u8 = 0;
    pub const FLOAT: u8 = 1;
    pub const STR: u8 = 2;
    pub const SHAPE: u8 = 3;
    /// Followed by an optional-list tag ([`super::opt_tag`]) and, if present, a string id
    /// list.
    pub const READERS: u8 = 4;
}

/// The bits of the manifest's flags byte; the others must be zero.
pub mod manifest_flag {
    pub const DECLASSIFY: u8 = 1;
    pub const ENDORSE: u8 = 2;
    pub const ALL: u8 = DECLASSIFY | ENDORSE;
}

/// Tags of [`crate::format::TypeDesc`].
pub mod type_tag {
    pub const ANY: u8 = 0;
    pub const NULL: u8 = 1;
    pub const BOOL: u8 = 2;
    pub const INT: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const STR: u8 = 5;
    pub const LIST: u8 = 6;
    pub const MAP: u8 = 7;
    pub const RECORD: u8 = 8;
    pub const OPTIONAL: u8 = 9;
    pub const STR_LIT: u8 = 10;
    pub const UNION: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const ERROR: u8 = 13;
    pub const NAMED: u8 = 14;
}

/// Tags of an optional u32 field: absent, or present and followed by the u32.
pub mod opt_tag {
    pub const NONE: u8 = 0;
    pub const SOME: u8 = 1;
}

/// The smallest encoded size of one entry of each table: the decoder checks a count against the
/// remaining bytes with these before allocating anything.
pub mod min_size {
    pub const STRING: usize = 4;
    /// A public readers constant: its tag and the "none" tag.
    pub const CONSTANT: usize = 2;
    pub const TYPE: usize = 1;
    pub const U32: usize = 4;
    pub const FUNCTION: usize = 4 + 4 + 4 + 2 + 2 + 1 + 1 + 4 + 4;
    pub const PAIR: usize = 8;
    pub const LINE: usize = 12;
    /// Six string id lists and the flags byte.
    pub const MANIFEST: usize = 6 * 4 + 1;
}
