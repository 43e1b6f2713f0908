//! Prepared statements as drivers use them (mssql-jdbc, ODBC, ADO.NET): the system procedures
//! `sp_prepexec`, `sp_execute` and `sp_unprepare` called over RPC (MS-TDS 2.2.6.6 ProcIDs 13, 12,
//! 15), and `sp_executesql` with positional values.
//!
//! Each is turned into one `sp_executesql` request with named values, which the executor runs.
//! Handles live per connection, numbered from 1 in the order they are made, as SQL Server numbers
//! them. `sp_prepexec` answers with its result sets, then RETURNSTATUS, then the handle as the
//! value of its first (OUTPUT) parameter in a RETURNVALUE token, then DONEPROC.

use std::collections::HashMap;

use crate::error::SqlError;
use crate::tds::rpc::{RpcParam, RpcRequest};
use crate::value::{SqlType, Value};

/// One prepared statement: its parameter declarations and its text.
#[derive(Debug, Clone)]
struct Prepared {
    decl: String,
    stmt: String,
}

/// The prepared statements of one connection.
#[derive(Debug, Default)]
pub(crate) struct Handles {
    last: i32,
    map: HashMap<i32, Prepared>,
}

/// What to do with an RPC request.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Run this request as it is (any other procedure).
    Forward(RpcRequest),
    /// Run this `sp_executesql` request; `handle` is the OUTPUT value to return, if any.
    Execute {
        req: RpcRequest,
        handle: Option<i32>,
    },
    /// Nothing to run: the call succeeded (`sp_unprepare`).
    Nothing,
    /// The call fails with this error before anything runs.
    Fail(SqlError),
}

/// The procedure's bare lower-case name (`sys.sp_execute`, `master..sp_execute` → `sp_execute`).
fn bare(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches(|c| c == '[' || c == ']')
        .to_lowercase()
}

/// The parameter names of a declaration list such as `@P0 int,@P1 nvarchar(4000) OUTPUT`, in
/// order. Commas inside parentheses (`decimal(10,2)`) do not split.
fn declared_names(decl: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut part = String::new();
    let mut flush = |part: &mut String| {
        if let Some(name) = part.split_whitespace().next()
            && name.starts_with('@')
        {
            names.push(name.to_string());
        }
        part.clear();
    };
    for c in decl.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                flush(&mut part);
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
    flush(&mut part);
    names
}

fn text(p: Option<&RpcParam>) -> Option<String> {
    p.and_then(|p| p.value.to_text())
}

/// `sp_prepexec`'s `@stmt`: a missing one is error 201, as for any procedure; one that is not
/// text (its RPC type is not a Unicode string type, or it is NULL) is error 214, SQL Server's
/// number for a parameter of the wrong type. The parameter name in 214's text is the
/// documented one and the NULL case has not been checked against a server.
fn prepexec_stmt(p: Option<&RpcParam>) -> Result<String, SqlError> {
    let Some(p) = p else {
        return Err(SqlError::missing_parameter("sp_prepexec", "stmt"));
    };
    let unicode = matches!(
        p.ty,
        None | Some(SqlType::NVarChar(_) | SqlType::NChar(_) | SqlType::NText)
    );
    match p.value.to_text() {
        Some(stmt) if unicode => Ok(stmt),
        _ => Err(SqlError::new(
            214,
            "Procedure expects parameter '@stmt' of type 'ntext/nchar/nvarchar'.",
        )),
    }
}

fn handle_of(p: Option<&RpcParam>) -> Option<i32> {
    match p.map(|p| &p.value) {
        Some(Value::Int(n)) => i32::try_from(*n).ok(),
        _ => None,
    }
}

/// Error 8179, as SQL Server reports an unknown handle.
fn unknown_handle(h: Option<i32>) -> SqlError {
    let shown = h.map_or_else(|| "NULL".to_string(), |h| h.to_string());
    SqlError::new(
        8179,
        format!("Could not find prepared statement with handle {shown}."),
    )
    .class(16)
    .state(4)
}

/// The `sp_executesql` request that runs `stmt` with `values` bound to the names `decl` declares.
/// Values that carry their own name keep it; unnamed ones take the declared names in order.
fn executesql(decl: &str, stmt: &str, values: Vec<RpcParam>) -> Result<RpcRequest, SqlError> {
    let names = declared_names(decl);
    let mut params = vec![
        RpcParam {
            name: "@stmt".into(),
            ty: Some(SqlType::NVarChar(crate::value::Len::Max)),
            value: Value::Str(stmt.to_string()),
        },
        RpcParam {
            name: "@params".into(),
            ty: Some(SqlType::NVarChar(crate::value::Len::Max)),
            value: Value::Str(decl.to_string()),
        },
    ];
    let given = values.len();
    for (i, mut v) in values.into_iter().enumerate() {
        if v.name.is_empty() {
            match names.get(i) {
                Some(n) => v.name = n.clone(),
                // More values than declarations: SQL Server's error 8144.
                None => {
                    return Err(SqlError::new(
                        8144,
                        "Procedure or function  has too many arguments specified.",
                    )
                    .class(16)
                    .state(2));
                }
            }
        }
        params.push(v);
    }
    if let Some(missing) = names.get(given) {
        return Err(SqlError::new(
            8178,
            format!(
                "The parameterized query '({decl}){}' expects the parameter '{missing}', which was not supplied.",
                stmt.chars().take(100).collect::<String>()
            ),
        )
        .class(16)
        .state(1));
    }
    Ok(RpcRequest {
        proc_name: "sp_executesql".into(),
        params,
    })
}

impl Handles {
    /// `sp_unprepare handle` (as an RPC or as `EXEC sp_unprepare n` in a batch, which is how
    /// mssql-jdbc discards handles in bulk): 8179 for a handle this connection does not have.
    pub(crate) fn unprepare(&mut self, handle: Option<&Value>) -> Result<(), SqlError> {
        let h = match handle {
            Some(Value::Int(n)) => i32::try_from(*n).ok(),
            _ => None,
        };
        match h.and_then(|h| self.map.remove(&h)) {
            Some(_) => Ok(()),
            None => Err(unknown_handle(h)),
        }
    }

    /// Decides how to serve `req`, recording or dropping prepared statements.
    pub(crate) fn plan(&mut self, req: RpcRequest) -> Plan {
        let name = bare(&req.proc_name);
        let mut params = req.params;
        match name.as_str() {
            "sp_executesql" => {
                // Positional values need the declared names; named ones pass through.
                if params.iter().skip(2).all(|p| !p.name.is_empty()) {
                    return Plan::Forward(RpcRequest {
                        proc_name: req.proc_name,
                        params,
                    });
                }
                let Some(stmt) = text(params.first()) else {
                    return Plan::Forward(RpcRequest {
                        proc_name: req.proc_name,
                        params,
                    });
                };
                let decl = text(params.get(1)).unwrap_or_default();
                let values = params.split_off(2.min(params.len()));
                match executesql(&decl, &stmt, values) {
                    Ok(req) => Plan::Execute { req, handle: None },
                    Err(e) => Plan::Fail(e),
                }
            }
            // sp_prepexec @handle OUTPUT, @params, @stmt, values...
            "sp_prepexec" => {
                let decl = text(params.get(1)).unwrap_or_default();
                let stmt = match prepexec_stmt(params.get(2)) {
                    Ok(stmt) => stmt,
                    Err(e) => return Plan::Fail(e),
                };
                let values = params.split_off(3.min(params.len()));
                self.last += 1;
                let handle = self.last;
                self.map.insert(
                    handle,
                    Prepared {
                        decl: decl.clone(),
                        stmt: stmt.clone(),
                    },
                );
                match executesql(&decl, &stmt, values) {
                    Ok(req) => Plan::Execute {
                        req,
                        handle: Some(handle),
                    },
                    Err(e) => Plan::Fail(e),
                }
            }
            // sp_execute @handle, values...
            "sp_execute" => {
                let h = handle_of(params.first());
                let Some(p) = h.and_then(|h| self.map.get(&h)).cloned() else {
                    return Plan::Fail(unknown_handle(h));
                };
                let values = params.split_off(1.min(params.len()));
                match executesql(&p.decl, &p.stmt, values) {
                    Ok(req) => Plan::Execute { req, handle: None },
                    Err(e) => Plan::Fail(e),
                }
            }
            // sp_unprepare @handle
            "sp_unprepare" => match self.unprepare(params.first().map(|p| &p.value)) {
                Ok(()) => Plan::Nothing,
                Err(e) => Plan::Fail(e),
            },
            _ => Plan::Forward(RpcRequest {
                proc_name: req.proc_name,
                params,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Handles, Plan, declared_names};
    use crate::tds::rpc::{RpcParam, RpcRequest};
    use crate::value::{Len, SqlType, Value};

    fn prepexec(params: Vec<RpcParam>) -> Option<i32> {
        let req = RpcRequest {
            proc_name: "sp_prepexec".into(),
            params,
        };
        match Handles::default().plan(req) {
            Plan::Fail(e) => Some(e.number),
            _ => None,
        }
    }

    fn param(ty: SqlType, value: Value) -> RpcParam {
        RpcParam {
            name: String::new(),
            ty: Some(ty),
            value,
        }
    }

    #[test]
    fn sp_prepexec_without_stmt_is_201_and_a_non_unicode_stmt_is_214() {
        let handle = param(SqlType::Int, Value::Null);
        let decl = param(SqlType::NVarChar(Len::N(4000)), Value::Str(String::new()));
        assert_eq!(prepexec(vec![handle.clone(), decl.clone()]), Some(201));
        let varchar = param(SqlType::VarChar(Len::N(100)), Value::Str("SELECT 1".into()));
        assert_eq!(
            prepexec(vec![handle.clone(), decl.clone(), varchar]),
            Some(214)
        );
        let null = param(SqlType::NVarChar(Len::Max), Value::Null);
        assert_eq!(
            prepexec(vec![handle.clone(), decl.clone(), null]),
            Some(214)
        );
        let ok = param(SqlType::NVarChar(Len::Max), Value::Str("SELECT 1".into()));
        assert_eq!(prepexec(vec![handle, decl, ok]), None);
    }

    #[test]
    fn declared_names_split_at_top_level_commas_only() {
        assert_eq!(
            declared_names("@P0 decimal(10,2),@P1 nvarchar(4000) OUTPUT, @x int"),
            vec!["@P0", "@P1", "@x"]
        );
        assert!(declared_names("").is_empty());
    }
}
