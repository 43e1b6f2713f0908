//! `geometry` and `geography`: well-known text (STGeomFromText / STAsText), well-known
//! binary (STGeomFromWKB / STAsBinary), the native serialization SQL Server stores and sends
//! ([MS-SSCLRT] 2.1, version 1), and the errors SQL Server raises.
//!
//! Shapes: POINT, LINESTRING and POLYGON (2D; no Z/M, no collections or curves).
//!
//! Native layout (little-endian): SRID (i32), version (1), serialization properties
//! (0x04 valid, 0x08 single point, 0x10 single line segment), then for a single point its two
//! doubles, for a single segment its four, else: point count, points, figure count, figures
//! (attribute 1 stroke / 2 exterior ring / 0 interior ring, first point offset), shape count,
//! shapes (parent offset -1, figure offset, OGC type 1 point / 2 linestring / 3 polygon).
//! A geography stores each point latitude first (the WKT order is longitude latitude); a
//! geometry stores x, y. Example (a widely quoted server value): `geometry::Point(1, 2, 0)` is
//! `0x00000000010C000000000000F03F0000000000000040`.

use crate::error::{SqlError, SqlResult};

/// A 2D shape in WKT coordinate order (x, y; for geography longitude, latitude).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// `POINT (x y)`
    Point(f64, f64),
    /// `LINESTRING (x y, ...)`, two points at least.
    LineString(Vec<(f64, f64)>),
    /// `POLYGON ((x y, ...), ...)`: the exterior ring, then interior rings, each closed.
    Polygon(Vec<Vec<(f64, f64)>>),
}

/// Which of the two types a value is; they differ in names, point order and the latitude
/// check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `geometry` (planar; SRID unconstrained, default 0).
    Geometry,
    /// `geography` (round earth; latitude in [-90, 90], default SRID 4326).
    Geography,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Geometry => "geometry",
            Kind::Geography => "geography",
        }
    }

    /// The SRID a value gets from a plain string (`CAST('POINT (1 2)' AS geography)`).
    pub(crate) fn default_srid(self) -> i32 {
        match self {
            Kind::Geometry => 0,
            Kind::Geography => 4326,
        }
    }
}

/// SQL Server's error 6522 wrapping the CLR exception `exception` ("24201: ...") raised
/// inside the `geometry`/`geography` routine.
fn clr_error(kind: Kind, exception: &str, message: &str) -> SqlError {
    SqlError::new(
        6522,
        format!(
            "A .NET Framework error occurred during execution of user-defined routine or aggregate \"{}\": \n{exception}: {message}\n{exception}: \n",
            kind.name()
        ),
    )
    .statement_only()
}

fn format_error(kind: Kind, message: &str) -> SqlError {
    clr_error(kind, "System.FormatException", message)
}

/// 24201, geography only: a latitude outside [-90, 90] (Microsoft's text).
fn check(kind: Kind, shape: &Shape) -> SqlResult<()> {
    if kind == Kind::Geography {
        let points: Vec<(f64, f64)> = match shape {
            Shape::Point(x, y) => vec![(*x, *y)],
            Shape::LineString(p) => p.clone(),
            Shape::Polygon(r) => r.concat(),
        };
        if points.iter().any(|(_, lat)| !(-90.0..=90.0).contains(lat)) {
            return Err(format_error(
                kind,
                "24201: Latitude values must be between -90 and 90 degrees.",
            ));
        }
    }
    if let Shape::Polygon(rings) = shape {
        for ring in rings {
            if ring.first() != ring.last() {
                return Err(clr_error(
                    kind,
                    "System.ArgumentException",
                    "24119: The Polygon input is not valid because the start and end points of the exterior ring are not the same. Each ring of a polygon must have the same start and end points.",
                ));
            }
        }
    }
    Ok(())
}

/// Parses WKT (`POINT (1 2)`, `LINESTRING (0 0, 1 1)`, `POLYGON ((0 0, 1 0, 1 1, 0 0))`).
/// Refuses other labels (24114) and malformed text (24141-style; the exact position SQL
/// Server names is not reproduced).
pub(crate) fn parse_wkt(kind: Kind, text: &str) -> SqlResult<Shape> {
    let t = text.trim();
    let open = t.find('(').unwrap_or(t.len());
    let label = t[..open].trim().to_ascii_uppercase();
    let body = t[open..].trim();
    let bad = || {
        format_error(
            kind,
            &format!(
                "24141: A number is expected at position 1 of the input. The input has {text}."
            ),
        )
    };
    let inner = |s: &str| -> Option<String> {
        let s = s.trim();
        Some(s.strip_prefix('(')?.strip_suffix(')')?.to_string())
    };
    let points = |s: &str| -> SqlResult<Vec<(f64, f64)>> {
        s.split(',')
            .map(|p| {
                let mut it = p.split_whitespace().map(str::parse::<f64>);
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(x)), Some(Ok(y)), None) if x.is_finite() && y.is_finite() => {
                        Ok((x, y))
                    }
                    _ => Err(bad()),
                }
            })
            .collect()
    };
    let shape = match label.as_str() {
        "POINT" => {
            let p = points(&inner(body).ok_or_else(bad)?)?;
            match p.as_slice() {
                [(x, y)] => Shape::Point(*x, *y),
                _ => return Err(bad()),
            }
        }
        "LINESTRING" => {
            let p = points(&inner(body).ok_or_else(bad)?)?;
            if p.len() < 2 {
                return Err(bad());
            }
            Shape::LineString(p)
        }
        "POLYGON" => {
            let rings_text = inner(body).ok_or_else(bad)?;
            let mut rings = Vec::new();
            for part in rings_text.split(')') {
                let part = part.trim().trim_start_matches(',').trim();
                if part.is_empty() {
                    continue;
                }
                let ring = points(part.strip_prefix('(').ok_or_else(bad)?)?;
                if ring.len() < 4 {
                    return Err(bad());
                }
                rings.push(ring);
            }
            if rings.is_empty() {
                return Err(bad());
            }
            Shape::Polygon(rings)
        }
        _ => {
            return Err(format_error(
                kind,
                &format!(
                    "24114: The label {} in the input well-known text (WKT) is not valid. Valid labels are POINT, LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON, GEOMETRYCOLLECTION, CIRCULARSTRING, COMPOUNDCURVE, CURVEPOLYGON and FULLGLOBE (geography Data Type only).",
                    t.chars().take(open.min(t.len())).collect::<String>().trim()
                ),
            ));
        }
    };
    check(kind, &shape)?;
    Ok(shape)
}

/// A coordinate as STAsText prints it: the shortest text that reads back to the same double
/// ("1", "1.5", "-122.34").
fn num(v: f64) -> String {
    format!("{v}")
}

fn coords(p: &[(f64, f64)]) -> String {
    p.iter()
        .map(|(x, y)| format!("{} {}", num(*x), num(*y)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// STAsText: `POINT (1 2)`, `LINESTRING (0 0, 1 1)`, `POLYGON ((0 0, 1 0, 1 1, 0 0))`.
pub(crate) fn to_wkt(shape: &Shape) -> String {
    match shape {
        Shape::Point(x, y) => format!("POINT ({} {})", num(*x), num(*y)),
        Shape::LineString(p) => format!("LINESTRING ({})", coords(p)),
        Shape::Polygon(rings) => format!(
            "POLYGON ({})",
            rings
                .iter()
                .map(|r| format!("({})", coords(r)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// STAsBinary: OGC WKB, little-endian (byte order 1), 2D type codes 1/2/3.
pub(crate) fn to_wkb(shape: &Shape) -> Vec<u8> {
    let mut out = vec![1u8];
    let put = |out: &mut Vec<u8>, p: &[(f64, f64)]| {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        for (x, y) in p {
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
    };
    match shape {
        Shape::Point(x, y) => {
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
        Shape::LineString(p) => {
            out.extend_from_slice(&2u32.to_le_bytes());
            put(&mut out, p);
        }
        Shape::Polygon(rings) => {
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&(rings.len() as u32).to_le_bytes());
            for r in rings {
                put(&mut out, r);
            }
        }
    }
    out
}

/// A bounds-checked little-endian reader.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self, big: bool) -> Option<u32> {
        let a: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
    fn f64(&mut self, big: bool) -> Option<f64> {
        let a: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(if big {
            f64::from_be_bytes(a)
        } else {
            f64::from_le_bytes(a)
        })
    }
    fn points(&mut self, n: usize, big: bool) -> Option<Vec<(f64, f64)>> {
        (0..n)
            .map(|_| Some((self.f64(big)?, self.f64(big)?)))
            .collect()
    }
    fn count(&mut self, big: bool) -> Option<usize> {
        let n = self.u32(big)? as usize;
        // Each element takes 16 bytes at least: a count beyond the input is malformed.
        (n <= self.b.len()).then_some(n)
    }
}

/// STGeomFromWKB: a POINT, LINESTRING or POLYGON in WKB of either byte order. Malformed
/// input is refused with 6522 wrapping 24210 (number and text unverified).
pub(crate) fn from_wkb(kind: Kind, b: &[u8]) -> SqlResult<Shape> {
    let bad = || {
        format_error(
            kind,
            "24210: The well-known binary (WKB) input is not valid.",
        )
    };
    let mut c = Cursor { b, at: 0 };
    let big = match c.u8().ok_or_else(bad)? {
        0 => true,
        1 => false,
        _ => return Err(bad()),
    };
    let shape = match c.u32(big).ok_or_else(bad)? {
        1 => Shape::Point(c.f64(big).ok_or_else(bad)?, c.f64(big).ok_or_else(bad)?),
        2 => {
            let n = c.count(big).ok_or_else(bad)?;
            Shape::LineString(c.points(n, big).ok_or_else(bad)?)
        }
        3 => {
            let rings = c.count(big).ok_or_else(bad)?;
            let mut out = Vec::new();
            for _ in 0..rings {
                let n = c.count(big).ok_or_else(bad)?;
                out.push(c.points(n, big).ok_or_else(bad)?);
            }
            Shape::Polygon(out)
        }
        _ => return Err(bad()),
    };
    if c.at != b.len() {
        return Err(bad());
    }
    check(kind, &shape)?;
    Ok(shape)
}

/// The native serialization (what `CAST(g AS varbinary(max))` returns and the UDT carries).
pub(crate) fn to_native(kind: Kind, srid: i32, shape: &Shape) -> Vec<u8> {
    let mut out = srid.to_le_bytes().to_vec();
    out.push(1);
    // Stored point order: geography latitude first.
    let put = |out: &mut Vec<u8>, (x, y): (f64, f64)| {
        let (a, b) = match kind {
            Kind::Geometry => (x, y),
            Kind::Geography => (y, x),
        };
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    };
    match shape {
        Shape::Point(x, y) => {
            out.push(0x04 | 0x08);
            put(&mut out, (*x, *y));
        }
        Shape::LineString(p) if p.len() == 2 => {
            out.push(0x04 | 0x10);
            p.iter().for_each(|q| put(&mut out, *q));
        }
        Shape::LineString(p) => {
            out.push(0x04);
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            p.iter().for_each(|q| put(&mut out, *q));
            out.extend_from_slice(&1u32.to_le_bytes());
            out.push(1);
            out.extend_from_slice(&0u32.to_le_bytes());
            put_shape(&mut out, 2);
        }
        Shape::Polygon(rings) => {
            out.push(0x04);
            let total: usize = rings.iter().map(Vec::len).sum();
            out.extend_from_slice(&(total as u32).to_le_bytes());
            rings.iter().flatten().for_each(|q| put(&mut out, *q));
            out.extend_from_slice(&(rings.len() as u32).to_le_bytes());
            let mut offset = 0u32;
            for (i, r) in rings.iter().enumerate() {
                out.push(if i == 0 { 2 } else { 0 });
                out.extend_from_slice(&offset.to_le_bytes());
                offset += r.len() as u32;
            }
            put_shape(&mut out, 3);
        }
    }
    out
}

/// One top-level shape over the first figure.
fn put_shape(out: &mut Vec<u8>, ogc_type: u8) {
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(-1i32).to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.push(ogc_type);
}

/// Reads the native serialization back: (SRID, shape). Refuses what [`to_native`] does not
/// write (other versions, Z/M values, collections) with 6522 wrapping a FormatException (the
/// exception text a real server gives for every malformed input is unverified).
pub(crate) fn from_native(kind: Kind, b: &[u8]) -> SqlResult<(i32, Shape)> {
    let bad = || {
        clr_error(
            kind,
            "System.FormatException",
            "One of the identified items was in an invalid format.",
        )
    };
    let mut c = Cursor { b, at: 0 };
    let srid = c.u32(false).ok_or_else(bad)? as i32;
    if c.u8() != Some(1) {
        return Err(bad());
    }
    let props = c.u8().ok_or_else(bad)?;
    let swap = |(a, b): (f64, f64)| match kind {
        Kind::Geometry => (a, b),
        Kind::Geography => (b, a),
    };
    let shape = if props & 0x08 != 0 {
        let (x, y) = swap(c.points(1, false).ok_or_else(bad)?[0]);
        Shape::Point(x, y)
    } else if props & 0x10 != 0 {
        Shape::LineString(
            c.points(2, false)
                .ok_or_else(bad)?
                .into_iter()
                .map(swap)
                .collect(),
        )
    } else {
        if props & 0x03 != 0 {
            return Err(bad());
        }
        let n = c.count(false).ok_or_else(bad)?;
        let points: Vec<(f64, f64)> = c
            .points(n, false)
            .ok_or_else(bad)?
            .into_iter()
            .map(swap)
            .collect();
        let figures = c.count(false).ok_or_else(bad)?;
        let mut starts = Vec::new();
        for _ in 0..figures {
            c.u8().ok_or_else(bad)?;
            starts.push(c.u32(false).ok_or_else(bad)? as usize);
        }
        if c.count(false) != Some(1) {
            return Err(bad());
        }
        c.take(8).ok_or_else(bad)?;
        let ty = c.u8().ok_or_else(bad)?;
        let mut rings = Vec::new();
        for (i, s) in starts.iter().enumerate() {
            let e = starts.get(i + 1).copied().unwrap_or(points.len());
            rings.push(points.get(*s..e).ok_or_else(bad)?.to_vec());
        }
        match (ty, rings.len()) {
            (2, 1) => Shape::LineString(rings.remove(0)),
            (3, _) => Shape::Polygon(rings),
            _ => return Err(bad()),
        }
    };
    Ok((srid, shape))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn a_geometry_point_serializes_as_sql_server_does() {
        let p = parse_wkt(Kind::Geometry, "POINT(1 2)").unwrap();
        assert_eq!(
            hex(&to_native(Kind::Geometry, 0, &p)),
            "00000000010C000000000000F03F0000000000000040"
        );
    }

    #[test]
    fn wkt_wkb_and_native_round_trip_each_shape() {
        for kind in [Kind::Geometry, Kind::Geography] {
            for text in [
                "POINT (-122.34 47.65)",
                "LINESTRING (0 0, 1.5 1)",
                "LINESTRING (0 0, 1 1, 2 0)",
                "POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))",
            ] {
                let s = parse_wkt(kind, text).unwrap();
                assert_eq!(to_wkt(&s), text);
                assert_eq!(from_wkb(kind, &to_wkb(&s)).unwrap(), s);
                assert_eq!(
                    from_native(kind, &to_native(kind, 4326, &s)).unwrap(),
                    (4326, s)
                );
            }
        }
    }

    #[test]
    fn geography_stores_latitude_first_and_refuses_latitudes_beyond_90_with_24201() {
        let p = parse_wkt(Kind::Geography, "POINT (-122 47)").unwrap();
        let n = to_native(Kind::Geography, 4326, &p);
        assert_eq!(&n[6..14], &47f64.to_le_bytes());
        let e = parse_wkt(Kind::Geography, "POINT (47 -122)").unwrap_err();
        assert_eq!(e.number, 6522);
        assert!(e.message.contains(
            "System.FormatException: 24201: Latitude values must be between -90 and 90 degrees."
        ));
        assert!(parse_wkt(Kind::Geometry, "POINT (47 -122)").is_ok());
    }

    #[test]
    fn bad_wkt_is_refused() {
        assert!(
            parse_wkt(Kind::Geometry, "POINTX (1 2)")
                .unwrap_err()
                .message
                .contains("24114")
        );
        assert!(
            parse_wkt(Kind::Geometry, "POINT (1 a)")
                .unwrap_err()
                .message
                .contains("24141")
        );
        assert!(
            parse_wkt(Kind::Geometry, "POLYGON ((0 0, 1 0, 1 1, 0 1))")
                .unwrap_err()
                .message
                .contains("24119")
        );
    }
}
