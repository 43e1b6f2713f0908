//! One change-table row read into values: `__$start_lsn`, `__$seqval`, `__$operation`,
//! `__$command_id` and the captured columns, with columns an update did not change marked
//! unavailable where SQL Server does not log them.

use super::ChangeRow;
use crate::Error;
use crate::catalog::CaptureInstance;
use crate::types::into_value;
use cdc_core::{Lsn, Value};

/// Whether `__$update_mask` has the bit of the column at `ordinal` (1-based, as
/// `sys.fn_cdc_is_bit_set`): the mask's last byte holds columns 1-8, lowest bit first.
fn mask_has(mask: &[u8], ordinal: usize) -> bool {
    let Some(bit) = ordinal.checked_sub(1) else {
        return false;
    };
    mask.len()
        .checked_sub(1 + bit / 8)
        .and_then(|i| mask.get(i))
        .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
}

/// Marks the large-object values a change row does not carry as [`Value::Unavailable`]: a
/// NULL the change table holds because it did not capture the value, not because the column
/// is NULL. `text`/`ntext`/`image` in delete (1) and update-before (3) rows; a `(max)`
/// column in an update-before row whose bit in `__$update_mask` is not set (the update did
/// not change it). A changed `(max)` column's NULL is the value it had, and stays NULL.
fn mark_unavailable(instance: &CaptureInstance, operation: i64, mask: &[u8], values: &mut [Value]) {
    if operation != 1 && operation != 3 {
        return;
    }
    for lob in &instance.lobs {
        let not_captured = if lob.legacy {
            true
        } else {
            operation == 3 && !mask_has(mask, lob.ordinal)
        };
        if let Some(v) = values.get_mut(lob.value)
            && not_captured
            && *v == Value::Null
        {
            *v = Value::Unavailable;
        }
    }
}

/// One change-table row: the four CDC columns and `__$update_mask`, then the captured
/// columns' values.
pub(super) fn change_row(
    instance: &CaptureInstance,
    row: tiberius::Row,
) -> Result<ChangeRow, Error> {
    let what = || format!("cdc.{}_CT", instance.name);
    let lsn_at = |i: usize| {
        row.try_get::<&[u8], _>(i)
            .ok()
            .flatten()
            .and_then(Lsn::from_bytes)
            .ok_or_else(|| Error::protocol(what(), format!("column {i} is not a binary(10) LSN")))
    };
    let int_at = |i: usize| -> Result<i64, Error> {
        match row
            .get_column_data(i)
            .map_err(|e| Error::protocol(what(), e.to_string()))?
        {
            tiberius::ColumnData::I32(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::I16(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::U8(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::I64(Some(v)) => Ok(*v),
            other => Err(Error::protocol(
                what(),
                format!("column {i}: expected an integer, got {other:?}"),
            )),
        }
    };
    let (start_lsn, seqval) = (lsn_at(0)?, lsn_at(1)?);
    let (operation, command_id) = (int_at(2)?, int_at(3)?);
    let mask = row
        .try_get::<&[u8], _>(4)
        .map_err(|e| Error::protocol(what(), format!("__$update_mask: {e}")))?
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let table = &instance.table;
    let mut values = Vec::with_capacity(table.columns.len());
    let mut cells = row.into_iter().skip(5);
    for column in &table.columns {
        let data = cells.next().ok_or_else(|| {
            Error::protocol(what(), format!("no value for column {}", column.name))
        })?;
        values.push(
            into_value(data, &mut cells, &column.data_type).map_err(|reason| Error::Value {
                table: table.id.to_string(),
                column: column.name.clone(),
                reason,
            })?,
        );
    }
    mark_unavailable(instance, operation, &mask, &mut values);
    Ok(ChangeRow {
        start_lsn,
        seqval,
        operation: u8::try_from(operation)
            .map_err(|_| Error::protocol(what(), "bad __$operation"))?,
        command_id: i32::try_from(command_id)
            .map_err(|_| Error::protocol(what(), "bad __$command_id"))?,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::mask_has;

    #[test]
    fn update_mask_bits_count_from_the_last_byte() {
        // Ten columns: two bytes, columns 9-10 in the first, 1-8 in the last.
        let mask = [0b0000_0010, 0b1000_0001];
        assert!(mask_has(&mask, 1));
        assert!(!mask_has(&mask, 2));
        assert!(mask_has(&mask, 8));
        assert!(!mask_has(&mask, 9));
        assert!(mask_has(&mask, 10));
        assert!(!mask_has(&mask, 11));
        assert!(!mask_has(&mask, 0));
        assert!(!mask_has(&[], 1));
    }
}
