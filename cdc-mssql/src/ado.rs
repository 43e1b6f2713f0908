//! ADO.NET connection strings: `Server=tcp:host,1433;Database=shop;User Id=cdc;Password=...`.

use crate::Error;

/// The key/value pairs of a connection string, keys lower-cased and unaliased.
///
/// Errors never quote the string: a value holding an unquoted `;` splits into pieces that
/// would otherwise be shown as keys, and the value may be the password. They name the key
/// whose value the trouble follows instead.
pub(crate) fn parse(s: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let after = pairs.last().map(|(k, _)| k.clone());
        let Some(eq) = rest.find('=') else {
            return Err(Error::config(
                "connection string",
                unsplit(after.as_deref()),
            ));
        };
        let key = rest[..eq].trim().to_ascii_lowercase();
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_')
        {
            return Err(Error::config(
                "connection string",
                unsplit(after.as_deref()),
            ));
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            // A quoted value; a doubled quote inside stands for one quote.
            let mut out = String::new();
            let mut chars = rest[1..].char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == quote {
                    if chars.peek().map(|(_, n)| *n) == Some(quote) {
                        out.push(quote);
                        chars.next();
                        continue;
                    }
                    end = Some(i + 2);
                    break;
                }
                out.push(c);
            }
            let end = end.ok_or_else(|| Error::config(key.clone(), "unterminated quoted value"))?;
            value = out;
            rest = rest[end..].trim_start();
            rest = rest.strip_prefix(';').unwrap_or(rest);
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        rest = rest.trim_start();
        if !key.is_empty() {
            pairs.push((canonical(&key).to_string(), value));
        }
    }
    Ok(pairs)
}

/// What is wrong when a piece of the string is no `key=value`, without quoting it.
fn unsplit(after: Option<&str>) -> String {
    match after {
        Some(key) => format!(
            "text that is no key=value follows the value of {key:?}: a value holding ';' or '=' must be quoted ({key}='…')"
        ),
        None => "expected key=value at the start".to_string(),
    }
}

fn canonical(key: &str) -> &str {
    match key {
        "server" | "data source" | "address" | "addr" | "network address" => "server",
        "database" | "initial catalog" => "database",
        "user id" | "uid" | "user" => "user id",
        "password" | "pwd" => "password",
        "encrypt" => "encrypt",
        "trustservercertificate" | "trust server certificate" => "trustservercertificate",
        "applicationintent" | "application intent" => "applicationintent",
        "application name" | "app" => "application name",
        "connect timeout" | "connection timeout" | "timeout" => "connect timeout",
        "command timeout" => "command timeout",
        "hostnameincertificate" | "host name in certificate" => "hostnameincertificate",
        other => other,
    }
}

/// Splits `tcp:host,port`, `host\instance` or `host` into host and port.
pub(crate) fn server_address(value: &str) -> Result<(String, u16), Error> {
    let value = value.trim();
    let value = value.strip_prefix("tcp:").unwrap_or(value);
    if value.contains('\\') {
        return Err(Error::config(
            "Server",
            "named instances need the SQL Browser; give host,port instead",
        ));
    }
    match value.split_once(',') {
        Some((host, port)) => {
            let port = port
                .trim()
                .parse::<u16>()
                .map_err(|_| Error::config("Server", format!("port {port:?} is not a number")))?;
            Ok((host.trim().to_string(), port))
        }
        None => Ok((value.to_string(), 1433)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_aliases_quotes_and_ports() {
        let pairs = parse("Server=tcp:db.example.com,14330; Initial Catalog=shop;UID=cdc;PWD='p;a''ss';Encrypt=true").unwrap();
        assert_eq!(
            pairs[0],
            ("server".into(), "tcp:db.example.com,14330".into())
        );
        assert_eq!(pairs[1], ("database".into(), "shop".into()));
        assert_eq!(pairs[2], ("user id".into(), "cdc".into()));
        assert_eq!(pairs[3], ("password".into(), "p;a'ss".into()));
        assert_eq!(pairs[4], ("encrypt".into(), "true".into()));
        assert_eq!(
            server_address("tcp:db.example.com,14330").unwrap(),
            ("db.example.com".into(), 14330)
        );
        assert_eq!(
            server_address("localhost").unwrap(),
            ("localhost".into(), 1433)
        );
        assert!(server_address("h,x").is_err());
        assert!(parse("Server").is_err());
    }

    /// A password holding an unquoted `;` breaks the string into pieces; the error names
    /// the key it follows and never quotes a piece (it may be the password).
    #[test]
    fn errors_name_the_key_before_the_trouble_and_never_quote_the_string() {
        for s in [
            "Server=db;Password=se;Zq7;Database=shop",
            "Server=db;Password=se;Xy=Wv8",
            "Server=db;Password=pa\"ss;Qz\\7k;TrustServerCertificate=true",
        ] {
            // Pieces that parse as key=value reach the builder's key check.
            let message = crate::MssqlConfig::from_ado_string(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                message.to_lowercase().contains("password") && message.contains("quoted"),
                "{s}: names the key and the fix: {message}"
            );
            for piece in ["Zq7", "Xy", "xy", "Wv8", "Qz", "qz", "7k"] {
                assert!(!message.contains(piece), "{s}: {message} quotes {piece:?}");
            }
        }
    }
}
