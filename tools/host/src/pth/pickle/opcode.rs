//! The pickle opcodes the machine runs: those of protocols 0 to 5 that `torch.save` (or
//! Python's pickler for the dicts around a state_dict) emits. Any other byte is refused.

/// Declares [`Opcode`], its byte values and its conversion from a byte, from one list, so
/// the enum and the decoder cannot drift apart.
macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $byte:literal,)*) => {
        /// A pickle opcode; the discriminant is its byte. Names follow Python's
        /// `pickletools`, in CamelCase.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(in crate::pth) enum Opcode {
            $($(#[$doc])* $name = $byte,)*
        }

        impl TryFrom<u8> for Opcode {
            /// The byte, which is no opcode this machine knows.
            type Error = u8;

            fn try_from(byte: u8) -> Result<Self, u8> {
                match byte {
                    $($byte => Ok(Opcode::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

opcodes! {
    /// Protocol version (one byte operand).
    Proto = 0x80,
    /// Frame length (8-byte operand), a hint only.
    Frame = 0x95,
    /// End of the pickle: its value is the top of the stack.
    Stop = b'.',
    /// Pushes a mark.
    Mark = b'(',
    /// Discards the top of the stack.
    Pop = b'0',
    /// Discards everything down to the topmost mark.
    PopMark = b'1',
    /// Pushes the top of the stack again.
    Dup = b'2',
    EmptyDict = b'}',
    EmptyList = b']',
    /// Kept as a list.
    EmptySet = 0x8f,
    EmptyTuple = b')',
    /// The items above the topmost mark as a tuple.
    Tuple = b't',
    /// Kept as a tuple.
    FrozenSet = 0x91,
    List = b'l',
    Dict = b'd',
    Tuple1 = 0x85,
    Tuple2 = 0x86,
    Tuple3 = 0x87,
    /// Memo store, 1-byte index.
    BinPut = b'q',
    /// Memo store, 4-byte index.
    LongBinPut = b'r',
    /// Memo store at the next free index.
    Memoize = 0x94,
    /// Memo load, 1-byte index.
    BinGet = b'h',
    /// Memo load, 4-byte index.
    LongBinGet = b'j',
    /// UTF-8 string, 4-byte length.
    BinUnicode = b'X',
    /// UTF-8 string, 1-byte length.
    ShortBinUnicode = 0x8c,
    /// UTF-8 string, 8-byte length.
    BinUnicode8 = 0x8d,
    /// Latin-1 string (Python 2), 1-byte length.
    ShortBinString = b'U',
    /// Latin-1 string (Python 2), 4-byte length.
    BinString = b'T',
    /// Bytes, 4-byte length.
    BinBytes = b'B',
    /// Bytes, 1-byte length.
    ShortBinBytes = b'C',
    /// Bytes, 8-byte length.
    BinBytes8 = 0x8e,
    /// A bytearray, 8-byte length.
    ByteArray8 = 0x96,
    /// `module\nname\n` as operands.
    Global = b'c',
    /// Module and name from the stack.
    StackGlobal = 0x93,
    /// A persistent id from the stack: torch's storages.
    BinPersId = b'Q',
    /// Signed 4-byte integer.
    BinInt = b'J',
    /// Unsigned 1-byte integer.
    BinInt1 = b'K',
    /// Unsigned 2-byte integer.
    BinInt2 = b'M',
    /// Two's complement integer, 1-byte length.
    Long1 = 0x8a,
    /// Two's complement integer, 4-byte length.
    Long4 = 0x8b,
    NewTrue = 0x88,
    NewFalse = 0x89,
    None = b'N',
    /// Big-endian f64.
    BinFloat = b'G',
    /// `func(*args)`.
    Reduce = b'R',
    /// `cls.__new__(cls, *args)`.
    NewObj = 0x81,
    /// `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx = 0x92,
    /// `obj.__setstate__(state)`.
    Build = b'b',
    SetItem = b's',
    SetItems = b'u',
    Append = b'a',
    Appends = b'e',
    /// Adds to a set (kept as a list).
    AddItems = 0x90,
}

#[cfg(test)]
mod tests {
    use super::Opcode;

    #[test]
    fn bytes_decode_as_pickletools_names_them() {
        for (byte, op) in [
            (0x80, Opcode::Proto),
            (0x95, Opcode::Frame),
            (b'.', Opcode::Stop),
            (b'(', Opcode::Mark),
            (b'X', Opcode::BinUnicode),
            (0x8c, Opcode::ShortBinUnicode),
            (b'Q', Opcode::BinPersId),
            (0x8a, Opcode::Long1),
            (b'R', Opcode::Reduce),
            (b'u', Opcode::SetItems),
        ] {
            assert_eq!(Opcode::try_from(byte), Ok(op));
            assert_eq!(op as u8, byte);
        }
        // Protocol 0's text opcodes are never written by torch.save, and are refused.
        for b in [b'I', b'L', b'F', b'S', b'V', b'p', b'g', b'i', b'o', 0xff] {
            assert_eq!(Opcode::try_from(b), Err(b));
        }
    }
}
