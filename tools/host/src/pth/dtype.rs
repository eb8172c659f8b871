//! The element types of torch storages and tensors, and their conversion to f32.

/// An element type [`super::rebuild`] can convert to f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dtype {
    F16,
    BF16,
    F32,
    F64,
    U8,
    I8,
    I16,
    I32,
    I64,
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub(super) fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }

    /// A storage class (`torch.FloatStorage`, ..., `torch.cuda.FloatStorage` in old files
    /// saved from a GPU) or `torch.UntypedStorage` (bytes).
    pub(super) fn from_storage(module: &str, name: &str) -> Option<Dtype> {
        if !matches!(module, "torch" | "torch.storage" | "torch.cuda") {
            return None;
        }
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "DoubleStorage" => Dtype::F64,
            "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "CharStorage" => Dtype::I8,
            "ShortStorage" => Dtype::I16,
            "IntStorage" => Dtype::I32,
            "LongStorage" => Dtype::I64,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// A `torch.dtype` as pickled (`torch.float32`, ...).
    pub(super) fn from_dtype(module: &str, name: &str) -> Option<Dtype> {
        if module != "torch" {
            return None;
        }
        Some(match name {
            "float32" | "float" => Dtype::F32,
            "float16" | "half" => Dtype::F16,
            "bfloat16" => Dtype::BF16,
            "float64" | "double" => Dtype::F64,
            "uint8" => Dtype::U8,
            "int8" => Dtype::I8,
            "int16" | "short" => Dtype::I16,
            "int32" | "int" => Dtype::I32,
            "int64" | "long" => Dtype::I64,
            "bool" => Dtype::Bool,
            _ => return None,
        })
    }

    /// One little-endian element as f32. `b` should have `self.size()` bytes; missing ones
    /// read as zero, so a short slice gives a wrong value, never a panic.
    pub(super) fn decode(self, b: &[u8]) -> f32 {
        let mut a = [0u8; 8];
        let n = b.len().min(8);
        a[..n].copy_from_slice(&b[..n]);
        let [b0, b1, b2, b3, ..] = a;
        match self {
            Dtype::F32 => f32::from_le_bytes([b0, b1, b2, b3]),
            // Both are exact: every half and bfloat16 is an f32.
            Dtype::F16 => half::f16::from_le_bytes([b0, b1]).to_f32(),
            Dtype::BF16 => half::bf16::from_le_bytes([b0, b1]).to_f32(),
            Dtype::F64 => f64::from_le_bytes(a) as f32,
            Dtype::U8 => f32::from(b0),
            Dtype::I8 => f32::from(b0 as i8),
            Dtype::I16 => f32::from(i16::from_le_bytes([b0, b1])),
            Dtype::I32 => i32::from_le_bytes([b0, b1, b2, b3]) as f32,
            Dtype::I64 => i64::from_le_bytes(a) as f32,
            Dtype::Bool => f32::from(u8::from(b0 != 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dtype;

    #[test]
    fn halves_convert_exactly() {
        let f16 = |bits: u16| Dtype::F16.decode(&bits.to_le_bytes());
        assert_eq!(f16(0x3c00), 1.0);
        assert_eq!(f16(0xc000), -2.0);
        assert_eq!(f16(0x7bff), 65504.0);
        // The smallest subnormal, 2^-24, and negative zero.
        assert_eq!(f16(0x0001), 2f32.powi(-24));
        assert_eq!(f16(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16(0x7c00), f32::INFINITY);
        assert!(f16(0x7e00).is_nan());
        let bf16 = |bits: u16| Dtype::BF16.decode(&bits.to_le_bytes());
        assert_eq!(bf16(0x3f80), 1.0);
        assert_eq!(bf16(0xc2f7), -123.5);
        assert_eq!(bf16(0xff80), f32::NEG_INFINITY);
    }

    #[test]
    fn integers_and_bools_convert_and_short_input_is_no_panic() {
        assert_eq!(Dtype::I8.decode(&[0xff]), -1.0);
        assert_eq!(Dtype::U8.decode(&[0xff]), 255.0);
        assert_eq!(Dtype::I16.decode(&(-300i16).to_le_bytes()), -300.0);
        assert_eq!(Dtype::I64.decode(&(-5i64).to_le_bytes()), -5.0);
        assert_eq!(Dtype::Bool.decode(&[7]), 1.0);
        assert_eq!(Dtype::F64.decode(&0.5f64.to_le_bytes()), 0.5);
        assert_eq!(Dtype::F32.decode(&[0, 0]), 0.0);
    }
}
