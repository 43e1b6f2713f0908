//! `geometry`/`geography` methods: the static constructors (`geography::Point(lat, long,
//! srid)`, `::STGeomFromText(wkt, srid)`, `::STGeomFromWKB(wkb, srid)`, `::Parse(wkt)`), the
//! instance methods (`STAsText()`, `STAsBinary()`, `ToString()`, `STGeometryType()`,
//! `STNumPoints()`) and properties (`STSrid`, `STX`, `STY`, `Lat`, `Long`).

use crate::error::{SqlError, SqlResult};
use crate::value::Value;
use crate::value::spatial::{self, Kind, Shape};

/// Instance methods (called with parentheses), lower case.
pub(super) const METHODS: &[&str] = &[
    "stastext",
    "stasbinary",
    "tostring",
    "stgeometrytype",
    "stnumpoints",
];

/// Properties (written without parentheses), lower case.
pub(crate) const PROPERTIES: &[&str] = &["stsrid", "stx", "sty", "lat", "long"];

/// 24204 for a geography SRID outside the supported range ([MS-SSCLRT]: 4120 to 4999).
fn check_srid(kind: Kind, srid: i64) -> SqlResult<i32> {
    let ok = match kind {
        Kind::Geography => (4120..=4999).contains(&srid),
        Kind::Geometry => i32::try_from(srid).is_ok(),
    };
    if !ok {
        return Err(SqlError::new(
            6522,
            "A .NET Framework error occurred during execution of user-defined routine or aggregate \"geography\": \nSystem.ArgumentException: 24204: The spatial reference identifier (SRID) is not valid. The specified SRID must match one of the supported SRIDs displayed in the sys.spatial_reference_systems catalog view.\nSystem.ArgumentException: \n",
        )
        .statement_only());
    }
    Ok(srid as i32)
}

/// A static method of `kind` (`method` lower case), or `None` if there is no such method.
pub(super) fn static_method(kind: Kind, method: &str, args: &[Value]) -> SqlResult<Option<Value>> {
    if args.iter().any(Value::is_null) {
        return Ok(Some(Value::Null));
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    let text = |i: usize| arg(i).to_text().unwrap_or_default();
    let srid = |i: usize| -> SqlResult<i32> {
        match arg(i).as_i64()? {
            Some(s) => check_srid(kind, s),
            None => Ok(kind.default_srid()),
        }
    };
    let (shape, srid) = match method {
        "stgeomfromtext" | "parse" => {
            let shape = spatial::parse_wkt(kind, &text(0))?;
            let srid = if method == "parse" {
                kind.default_srid()
            } else {
                srid(1)?
            };
            (shape, srid)
        }
        "stgeomfromwkb" => {
            let Value::Bytes(b) = arg(0) else {
                return Err(SqlError::conversion(
                    "STGeomFromWKB takes varbinary".to_string(),
                ));
            };
            (spatial::from_wkb(kind, &b)?, srid(1)?)
        }
        // geography::Point(Lat, Long, SRID); geometry::Point(X, Y, SRID).
        "point" => {
            let (a, b) = (
                arg(0).as_f64().unwrap_or_default(),
                arg(1).as_f64().unwrap_or_default(),
            );
            let (x, y) = match kind {
                Kind::Geography => (b, a),
                Kind::Geometry => (a, b),
            };
            let shape = spatial::parse_wkt(kind, &format!("POINT ({x} {y})"))?;
            (shape, srid(2)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(Value::Spatial(
        kind,
        spatial::to_native(kind, srid, &shape),
    )))
}

/// An instance method or property of a spatial value.
pub(super) fn instance(kind: Kind, bytes: &[u8], member: &str) -> SqlResult<Value> {
    let (srid, shape) = spatial::from_native(kind, bytes)?;
    let point = match shape {
        Shape::Point(x, y) => Some((x, y)),
        _ => None,
    };
    Ok(match member {
        "stastext" | "tostring" => Value::Str(spatial::to_wkt(&shape)),
        "stasbinary" => Value::Bytes(spatial::to_wkb(&shape)),
        "stgeometrytype" => Value::Str(
            match shape {
                Shape::Point(..) => "Point",
                Shape::LineString(_) => "LineString",
                Shape::Polygon(_) => "Polygon",
            }
            .into(),
        ),
        "stnumpoints" => Value::Int(match &shape {
            Shape::Point(..) => 1,
            Shape::LineString(p) => p.len() as i64,
            Shape::Polygon(r) => r.iter().map(Vec::len).sum::<usize>() as i64,
        }),
        "stsrid" => Value::Int(i64::from(srid)),
        "stx" if kind == Kind::Geometry => point.map_or(Value::Null, |p| Value::Float(p.0)),
        "sty" if kind == Kind::Geometry => point.map_or(Value::Null, |p| Value::Float(p.1)),
        "long" if kind == Kind::Geography => point.map_or(Value::Null, |p| Value::Float(p.0)),
        "lat" if kind == Kind::Geography => point.map_or(Value::Null, |p| Value::Float(p.1)),
        other => {
            return Err(SqlError::new(
                6506,
                format!(
                    "Could not find method '{other}' for type 'Microsoft.SqlServer.Types.Sql{}' in assembly 'Microsoft.SqlServer.Types'",
                    if kind == Kind::Geometry {
                        "Geometry"
                    } else {
                        "Geography"
                    }
                ),
            ));
        }
    })
}
