//! `geometry` and `geography` values as EWKB: OGC well-known binary with the SRID inside.
//!
//! Debezium's SQL Server connector emits these types as a struct `{wkb, srid}`
//! (`io.debezium.data.geometry.Geometry` / `Geography`). cdc-core carries them as opaque
//! bytes (`DataType::Opaque`), which has room for one byte string, so the reader puts both
//! parts in it the way PostGIS's extended WKB does: the WKB of `col.STAsBinary()` (OGC
//! layout, x = longitude for geography) with the SRID flag `0x20000000` set in the geometry
//! type and the SRID (`col.STSrid`) written right after it, in the WKB's byte order. GEOS,
//! shapely, PostGIS and DuckDB's spatial extension read it; the plain WKB is the same bytes
//! without those four SRID bytes and the flag.
//!
//! The query selects `CAST(col.STSrid AS binary(4)) + col.STAsBinary()` (SRID big-endian,
//! then the WKB); [`to_ewkb`] turns that into EWKB.

/// The EWKB flag that says an SRID follows the geometry type.
const EWKB_SRID_FLAG: u32 = 0x2000_0000;

/// The select-list expression for a spatial column (`quoted` is the bracketed name).
pub(crate) fn select_expression(quoted: &str) -> String {
    format!("CAST({quoted}.STSrid AS binary(4)) + {quoted}.STAsBinary() AS {quoted}")
}

/// The EWKB of what [`select_expression`] selected: 4 bytes of big-endian SRID, then WKB.
pub(crate) fn to_ewkb(selected: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "a spatial value of {} bytes is not SRID + WKB",
            selected.len()
        )
    };
    let srid: [u8; 4] = selected
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    let srid = u32::from_be_bytes(srid);
    let wkb = selected.get(4..).ok_or_else(bad)?;
    let (&order, rest) = wkb.split_first().ok_or_else(bad)?;
    let ty: [u8; 4] = rest
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    let big = match order {
        0 => true,
        1 => false,
        _ => return Err(bad()),
    };
    let ty = if big {
        u32::from_be_bytes(ty)
    } else {
        u32::from_le_bytes(ty)
    };
    let mut out = Vec::with_capacity(wkb.len() + 4);
    out.push(order);
    let (ty, srid) = if big {
        ((ty | EWKB_SRID_FLAG).to_be_bytes(), srid.to_be_bytes())
    } else {
        ((ty | EWKB_SRID_FLAG).to_le_bytes(), srid.to_le_bytes())
    };
    out.extend_from_slice(&ty);
    out.extend_from_slice(&srid);
    out.extend_from_slice(rest.get(4..).ok_or_else(bad)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn srid_and_wkb_become_ewkb() {
        // SRID 4326, WKB POINT (1 2) little-endian.
        let mut selected = 4326u32.to_be_bytes().to_vec();
        selected.extend_from_slice(&[1, 1, 0, 0, 0]);
        selected.extend_from_slice(&1f64.to_le_bytes());
        selected.extend_from_slice(&2f64.to_le_bytes());
        let mut want = vec![1, 1, 0, 0, 0x20];
        want.extend_from_slice(&4326u32.to_le_bytes());
        want.extend_from_slice(&1f64.to_le_bytes());
        want.extend_from_slice(&2f64.to_le_bytes());
        assert_eq!(to_ewkb(&selected).unwrap(), want);
        assert!(to_ewkb(&[0, 0, 0]).is_err());
    }
}
