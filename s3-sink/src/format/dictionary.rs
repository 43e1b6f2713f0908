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
pub(crate) fn plain_columns(batch: &RecordBatch) -> Vec<ColumnPath> {
    let mut out = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        collect(vec![field.name().clone()], array, &mut out);
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
    let (distinct, value_bytes) = match array.data_type() {
        ArrowType::Utf8 => distinct_bytes(array.as_string::<i32>().iter()),
        ArrowType::Binary => distinct_bytes(array.as_binary::<i32>().iter()),
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
            let seen: HashSet<&[u8]> = values
                .chunks_exact(width)
                .enumerate()
                .filter(|(i, _)| nulls.is_none_or(|n| n.is_valid(*i)))
                .map(|(_, v)| v)
                .collect();
            (seen.len(), present * width)
        }
        _ => return true,
    };
    // Byte arrays carry a 4-byte length in plain and in the dictionary page alike.
    let per_value = value_bytes.div_ceil(present);
    let index_bits = usize::try_from(usize::BITS - distinct.leading_zeros()).unwrap_or(64);
    let dictionary = distinct * per_value + (present * index_bits).div_ceil(8);
    dictionary < value_bytes
}

/// Distinct values and total bytes (each with its 4-byte plain length) of a byte column.
fn distinct_bytes<'a, T: AsRef<[u8]> + ?Sized + 'a>(
    values: impl Iterator<Item = Option<&'a T>>,
) -> (usize, usize) {
    let mut bytes = 0;
    let seen: HashSet<&[u8]> = values
        .flatten()
        .map(|v| {
            let v = v.as_ref();
            bytes += v.len() + 4;
            v
        })
        .collect();
    (seen.len(), bytes)
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
            plain_columns(&batch),
            vec![ColumnPath::new(vec!["after".into(), "id".into()])]
        );
    }
}
