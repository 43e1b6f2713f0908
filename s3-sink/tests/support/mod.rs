//! Shared test support: reading files back, a moto S3 server, Python readers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cdc_core::Position;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every object under `prefix` with its bytes, sorted by key.
pub async fn objects(store: &Arc<dyn ObjectStore>, prefix: Option<&Path>) -> Vec<(String, Bytes)> {
    let metas: Vec<_> = store.list(prefix).try_collect().await.unwrap();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.push((meta.location.to_string(), bytes));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The `__position` of every row of every Parquet or NDJSON object, read independently of
/// the sink (parquet's own reader; serde_json for lines).
pub async fn stored_positions(store: &Arc<dyn ObjectStore>) -> Vec<Position> {
    stored_positions_in(store, "__position").await
}

/// The position column `name` (the metadata prefix decides it) of every row of every Parquet
/// or NDJSON object (gzip or zstd compressed too), read independently of the sink.
pub async fn stored_positions_in(store: &Arc<dyn ObjectStore>, name: &str) -> Vec<Position> {
    use arrow_array::cast::AsArray;
    let mut positions = Vec::new();
    for (key, bytes) in objects(store, None).await {
        if key.ends_with(".parquet") {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let column = batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("{key}: no {name} column"));
                for s in column.as_string::<i32>().iter() {
                    positions.push(serde_json::from_str(s.unwrap()).unwrap());
                }
            }
        } else if let Some(text) = ndjson_lines(&key, &bytes) {
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                positions.push(serde_json::from_value(v[name].clone()).unwrap());
            }
        }
    }
    positions
}

/// The text of `column` in every row of every Parquet or NDJSON object (gzip or zstd
/// compressed too) that has a non-null value in it, with the row's `__position`, read
/// independently of the sink (parquet's own reader; flate2, zstd and serde_json for lines).
/// Where the value is: a top-level column in the flattened layout; in the Debezium envelope
/// layout the `after` struct's field, else the `before` struct's (a delete carries only a
/// before image), under `payload` in NDJSON's with-schema form. Rows of files written before
/// the column existed do not have it and are left out.
pub async fn stored_values(store: &Arc<dyn ObjectStore>, column: &str) -> Vec<(Position, String)> {
    let mut values = Vec::new();
    for (key, bytes) in objects(store, None).await {
        if key.ends_with(".parquet") {
            parquet_values(&key, bytes, column, &mut values);
        } else if let Some(lines) = ndjson_lines(&key, &bytes) {
            for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                let position: Position = serde_json::from_value(v["__position"].clone()).unwrap();
                let record = v.get("payload").unwrap_or(&v);
                let image = if record.get("after").is_some() || record.get("before").is_some() {
                    ["after", "before"]
                        .into_iter()
                        .filter_map(|image| record.get(image))
                        .find(|image| !image.is_null())
                } else {
                    Some(record)
                };
                let text = match image.and_then(|image| image.get(column)) {
                    None | Some(serde_json::Value::Null) => continue,
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                values.push((position, text));
            }
        }
    }
    values
}

/// The decompressed bytes of an NDJSON object by its extension (`.json`, `.json.gz`,
/// `.json.zst`); `None` for any other object.
fn ndjson_lines(key: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    if key.ends_with(".json") {
        Some(bytes.to_vec())
    } else if key.ends_with(".json.gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        Some(out)
    } else if key.ends_with(".json.zst") {
        Some(zstd::decode_all(bytes).unwrap())
    } else {
        None
    }
}

/// [`stored_values`] of one Parquet object.
fn parquet_values(key: &str, bytes: Bytes, column: &str, out: &mut Vec<(Position, String)>) {
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, StructArray};
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        let positions = batch
            .column_by_name("__position")
            .expect("a __position column")
            .as_string::<i32>();
        let images: Vec<&StructArray> = ["after", "before"]
            .into_iter()
            .filter_map(|name| batch.column_by_name(name))
            .map(|image| image.as_struct())
            .collect();
        for row in 0..batch.num_rows() {
            let array = if images.is_empty() {
                batch.column_by_name(column)
            } else {
                images
                    .iter()
                    .find(|image| image.is_valid(row))
                    .and_then(|image| image.column_by_name(column))
            };
            let Some(array) = array else { continue };
            if array.is_null(row) {
                continue;
            }
            let text = match array.data_type() {
                arrow_schema::DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
                arrow_schema::DataType::LargeUtf8 => {
                    array.as_string::<i64>().value(row).to_string()
                }
                arrow_schema::DataType::Utf8View => array.as_string_view().value(row).to_string(),
                other => panic!("{key}: column {column} is {other}, not a string"),
            };
            let position = serde_json::from_str(positions.value(row)).unwrap();
            out.push((position, text));
        }
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `$CDC_PYTHON`, else `<workspace>/.venv/bin/python`. Fails loudly when missing: these
/// tests are part of the suite, not optional.
pub fn python() -> PathBuf {
    let path = std::env::var_os("CDC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "Python with moto[server], duckdb and pyarrow is required: {} does not exist. \
         Create it with `python3 -m venv .venv && .venv/bin/pip install 'moto[server]' duckdb pyarrow` \
         in the workspace root, or set CDC_PYTHON.",
        path.display()
    );
    path
}

/// Runs `script` with the test Python and returns its stdout; panics with stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Reads every data file under `dir` with DuckDB and with pyarrow (Parquet) and prints, per
/// file, row counts and column types as JSON.
pub const READ_BACK: &str = r#"
import json, sys, pathlib
import duckdb
import pyarrow.parquet as pq
import pyarrow.json as pj
root = pathlib.Path(sys.argv[1])
out = {}
for f in sorted(p for p in root.rglob('*') if p.is_file()):
    name = str(f.relative_to(root))
    con = duckdb.connect()
    if name.endswith('.parquet'):
        rel = f"read_parquet('{f}')"
    else:
        rel = f"read_json_auto('{f}', format='newline_delimited')"
    rows = con.execute(f"select count(*) from {rel}").fetchone()[0]
    types = {r[0]: r[1] for r in con.execute(f"describe select * from {rel}").fetchall()}
    entry = {"duckdb_rows": rows, "duckdb_types": types}
    if name.endswith('.parquet'):
        t = pq.read_table(f)
        entry["pyarrow_rows"] = t.num_rows
        entry["pyarrow_types"] = {fld.name: str(fld.type) for fld in t.schema}
    out[name] = entry
print(json.dumps(out))
"#;

/// Runs [`READ_BACK`] over `dir`.
pub fn read_back(dir: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    let text = run_python(READ_BACK, &[dir.to_str().unwrap()]);
    match serde_json::from_str(&text).unwrap() {
        serde_json::Value::Object(map) => map,
        other => panic!("unexpected reader output {other}"),
    }
}

/// Downloads every object to `dir`, keeping keys as relative paths.
pub async fn download(store: &Arc<dyn ObjectStore>, dir: &std::path::Path) -> usize {
    let all = objects(store, None).await;
    for (key, bytes) in &all {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    all.len()
}

/// A moto S3 server on a free local port, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    port: u16,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub fn start() -> Self {
        let python = python();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let moto_server = python.parent().unwrap().join("moto_server");
        let mut command = if moto_server.exists() {
            let mut c = Command::new(moto_server);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        } else {
            let mut c = Command::new(&python);
            c.args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]);
            c
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server (pip install 'moto[server]'): {e}")
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if moto.request("GET", "/").is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// A raw HTTP request; the status line, or `None` if the server is not answering.
    fn request(&self, method: &str, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.lines().next().map(str::to_string)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .expect("moto answers");
        assert!(status.contains("200"), "creating bucket {bucket}: {status}");
    }

    /// Options for an `s3://` sink URL pointing at this server.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_virtual_hosted_style_request", "false".into()),
        ]
    }

    /// An object store for `bucket`.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id("test")
                .with_secret_access_key("test")
                .build()
                .unwrap(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
