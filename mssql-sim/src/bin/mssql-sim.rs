//! `mssql-sim --port 1433 --sa-password <pw> [--script setup.sql] [--capture-interval-ms N]`
//!
//! Runs the simulator until interrupted. `--capture-interval-ms 0` means manual capture
//! (only `EXEC sys.sp_cdc_scan` fills change tables).

use std::time::Duration;

use mssql_sim::{SimConfig, Simulator};

fn usage() -> ! {
    eprintln!(
        "usage: mssql-sim [--port N] --sa-password PW [--script FILE.sql] [--capture-interval-ms N]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut port = 1433u16;
    let mut password = None;
    let mut script = None;
    let mut interval: Option<u64> = Some(5000);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--port" => port = val().parse().unwrap_or_else(|_| usage()),
            "--sa-password" => password = Some(val()),
            "--script" => script = Some(val()),
            "--capture-interval-ms" => {
                let n: u64 = val().parse().unwrap_or_else(|_| usage());
                interval = if n == 0 { None } else { Some(n) };
            }
            "--help" | "-h" => usage(),
            _ => usage(),
        }
    }
    let Some(password) = password.or_else(|| std::env::var("MSSQL_SA_PASSWORD").ok()) else {
        usage()
    };
    let mut cfg = SimConfig::new(password).port(port);
    cfg.capture_interval = interval.map(Duration::from_millis);
    let sim = match Simulator::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mssql-sim: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = script {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("mssql-sim: cannot read {path}: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = sim.run_script(&text) {
            eprintln!("mssql-sim: {path}: {e}");
            std::process::exit(1);
        }
    }
    println!("mssql-sim listening on {}", sim.addr());
    let _ = tokio::signal::ctrl_c().await;
    sim.stop().await;
}
