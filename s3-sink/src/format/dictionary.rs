//! Which Parquet columns get dictionary encoding.
//!
//! arrow-rs keeps a column's dictionary until it outgrows the dictionary page (1 MiB), so a
//! column of distinct values (keys, timestamps, LSNs) is interned value by value and then
//! stored as a dictionary as large as the data plus indices: slower to write and larger to
//! store. parquet-mr, which Kafka Connect's S3 sink writes with, drops a dictionary whose
//! first page is not smaller than the plain values. The sink does the same from each file's
//! first record batch, so the choice depends only on the file's own events and a replay
//! writes the same bytes.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType as ArrowType;
use parquet::schema::types::ColumnPath;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// When Parquet columns use dictionary encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dictionary {
    /// Each column whose values in the file's first record batch are smaller as a
    /// dictionary plus indices than as plain values (parquet-mr's rule). The default.
    #[default]
    WhenSmaller,
    /// Every column (arrow-rs falls back to plain values when a dictionary outgrows its page).
    Always,
    /// No column.
    Never,
}

/// The leaf columns of `batch` whose dictionary would not pay, by Parquet column path.
/// Top-level columns named in `plain` are plain already and not judged.
pub(crate) fn plain_columns(batch: &RecordBatch, plain: &[&str]) -> Vec<ColumnPath> {
    let mut out = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        if !plain.contains(&field.name().as_str()) {
            collect(vec![field.name().clone()], array, &mut out);
        }
    }
    out
}

fn collect(path: Vec<String>, array: &ArrayRef, out: &mut Vec<ColumnPath>) {
    if let Some(s) = array.as_struct_opt() {
        for (field, child) in s.fields().iter().zip(s.columns()) {
            let mut p = path.clone();
            p.push(field.name().clone());
            collect(p, child, out);
        }
        return;
    }
    if !dictionary_pays(array.as_ref()) {
        out.push(ColumnPath::new(path));
    }
}

/// Whether a dictionary of `array`'s distinct values plus a bit-packed index per value is
/// smaller than the values themselves. Types it cannot judge keep their dictionary.
pub(crate) fn dictionary_pays(array: &dyn Array) -> bool {
    let present = array.len() - array.null_count();
    if present == 0 {
        return true;
    }
    match array.data_type() {
        ArrowType::Utf8 => byte_values_pay(
            array.as_string::<i32>().iter().flatten().map(str::as_bytes),
            present,
        ),
        ArrowType::Binary => byte_values_pay(array.as_binary::<i32>().iter().flatten(), present),
        t if t.is_primitive() => {
            let Some(width) = t.primitive_width() else {
                return true;
            };
            let data = array.to_data();
            let Some(buffer) = data.buffers().first() else {
                return true;
            };
            let start = data.offset() * width;
            let values = buffer
                .as_slice()
                .get(start..start + data.len() * width)
                .unwrap_or_default();
            let nulls = data.nulls();
            pays(
                values
                    .chunks_exact(width)
                    .enumerate()
                    .filter(|(i, _)| nulls.is_none_or(|n| n.is_valid(*i)))
                    .map(|(_, v)| v),
                present,
                present * width,
            )
        }
        _ => true,
    }
}

/// [`pays`] for byte arrays, which carry a 4-byte length in plain and in the dictionary page
/// alike.
fn byte_values_pay<'a>(values: impl Iterator<Item = &'a [u8]> + Clone, present: usize) -> bool {
    let plain = values.clone().map(|v| v.len() + 4).sum();
    pays(values, present, plain)
}

/// The rule for `present` non-NULL values taking `plain` bytes as plain values.
///
/// The dictionary's size only grows with the distinct values seen, so the count stops as
/// soon as it reaches the plain size: the answer is the same as after counting them all,
/// and columns of distinct values (keys, timestamps, names) are judged on part of the batch.
fn pays<'a>(values: impl Iterator<Item = &'a [u8]>, present: usize, plain: usize) -> bool {
    let per_value = plain.div_ceil(present);
    let dictionary = |distinct: usize| {
        let index_bits = usize::try_from(usize::BITS - distinct.leading_zeros()).unwrap_or(64);
        distinct * per_value + (present * index_bits).div_ceil(8)
    };
    let mut seen: HashSet<&[u8], BuildHasherDefault<ValueHasher>> =
        HashSet::with_capacity_and_hasher(present, BuildHasherDefault::default());
    for value in values {
        if seen.insert(value) && dictionary(seen.len()) >= plain {
            return false;
        }
    }
    dictionary(seen.len()) < plain
}

/// A fast hash for the values of one column: the std default (SipHash) resists hash
/// flooding, which counting a batch's distinct values does not need, at several times the
/// cost; this takes 8 bytes per multiply (the FxHash step) and mixes the result so the high
/// bits the table groups by depend on every byte.
#[derive(Default)]
struct ValueHasher(u64);

impl ValueHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for ValueHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // murmur3's finaliser: every input bit reaches the top bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use arrow_array::{Int32Array, Int64Array, StringArray, StructArray};
    use arrow_schema::{Field, Fields};
    use std::sync::Arc;

    #[test]
    fn distinct_values_stay_plain_repeated_ones_get_a_dictionary() {
        let keys = Int32Array::from_iter_values(0..1024);
        assert!(!dictionary_pays(&keys));
        let ops = StringArray::from_iter_values((0..1024).map(|i| ["c", "u", "d"][i % 3]));
        assert!(dictionary_pays(&ops));
        let names = StringArray::from_iter_values((0..1024).map(|i| format!("item {i}")));
        assert!(!dictionary_pays(&names));
        // One commit time per 50-row transaction.
        let times = Int64Array::from_iter_values((0..1024).map(|i| 1_700_000_000_000 + i / 50));
        assert!(dictionary_pays(&times));
        let nulls = Int64Array::from(vec![None::<i64>; 10]);
        assert!(dictionary_pays(&nulls));
    }

    /// The rule, counting every distinct value with the standard hasher.
    fn counted(values: &[&[u8]], plain: usize) -> bool {
        let distinct = values.iter().collect::<HashSet<_>>().len();
        let present = values.len();
        let per_value = plain.div_ceil(present);
        let index_bits = usize::try_from(usize::BITS - distinct.leading_zeros()).unwrap();
        distinct * per_value + (present * index_bits).div_ceil(8) < plain
    }

    #[test]
    fn stopping_early_answers_as_counting_every_value_would() {
        // Every share of distinct values from all-equal to all-distinct, so the threshold
        // is crossed at every place, for fixed-width and variable-width values.
        for distinct in 1..=1024usize {
            let ints = Int32Array::from_iter_values((0..1024).map(|i| (i % distinct) as i32));
            let words: Vec<[u8; 4]> = ints.values().iter().map(|v| v.to_le_bytes()).collect();
            let refs: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
            assert_eq!(
                dictionary_pays(&ints),
                counted(&refs, 1024 * 4),
                "{distinct}"
            );

            let texts = StringArray::from_iter_values(
                (0..1024).map(|i| format!("v{}", (i * 7) % distinct)),
            );
            let refs: Vec<&[u8]> = texts.iter().map(|v| v.unwrap().as_bytes()).collect();
            let plain = refs.iter().map(|v| v.len() + 4).sum();
            assert_eq!(dictionary_pays(&texts), counted(&refs, plain), "{distinct}");
        }
    }

    #[test]
    fn nulls_and_slices_are_not_counted_as_values() {
        // Two distinct values among many nulls: a dictionary pays.
        let mostly_null = Int64Array::from_iter((0..1024).map(|i| (i % 100 == 0).then_some(i % 2)));
        assert!(dictionary_pays(&mostly_null));
        let keys = Int64Array::from_iter_values(0..2048);
        assert!(!dictionary_pays(&keys.slice(1000, 1024)));
    }

    #[test]
    fn struct_children_are_judged_by_their_path() {
        let id: ArrayRef = Arc::new(Int32Array::from_iter_values(0..1024));
        let op: ArrayRef = Arc::new(StringArray::from_iter_values((0..1024).map(|_| "c")));
        let fields = Fields::from(vec![
            Field::new("id", ArrowType::Int32, false),
            Field::new("op", ArrowType::Utf8, false),
        ]);
        let after: ArrayRef = Arc::new(StructArray::new(fields.clone(), vec![id, op], None));
        let schema = Arc::new(arrow_schema::Schema::new(vec![Field::new(
            "after",
            ArrowType::Struct(fields),
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![after]).unwrap();
        assert_eq!(
            plain_columns(&batch, &[]),
            vec![ColumnPath::new(vec!["after".into(), "id".into()])]
        );
    }
}
