//! The embedded defaults: a simulated SQL Server with a sample shop schema, and a workload.

use crate::Result;
use mssql_sim::{SimConfig, Simulator};
use std::time::Duration;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The sample database.
pub const DATABASE: &str = "shop";

/// A sample schema: decimals, datetimes, nvarchar and uniqueidentifier, with CDC enabled.
pub const SCHEMA: &str = "
CREATE TABLE dbo.customers (
    id int NOT NULL PRIMARY KEY,
    external_id uniqueidentifier NOT NULL,
    name nvarchar(100) NOT NULL,
    email nvarchar(200) NULL,
    credit_limit decimal(12, 2) NOT NULL,
    created_at datetime2(7) NOT NULL
);
CREATE TABLE dbo.orders (
    id int NOT NULL PRIMARY KEY,
    customer_id int NOT NULL,
    amount decimal(18, 4) NOT NULL,
    status nvarchar(20) NOT NULL,
    placed_at datetimeoffset(7) NOT NULL
);
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL;
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL;
";

const PASSWORD: &str = "Demo-Passw0rd!";

/// A connection to a SQL Server.
pub type Connection = Client<Compat<TcpStream>>;

/// Where the sample data lives: an embedded simulator or a real server.
pub struct SampleServer {
    /// The simulator, when embedded.
    pub simulator: Option<Simulator>,
    /// ADO.NET connection string for the sample database.
    pub ado: String,
}

impl SampleServer {
    /// Starts a simulator (capture job every 200 ms, like a busy Agent job) with the sample
    /// schema and a few customers.
    pub async fn embedded() -> Result<Self> {
        let simulator =
            Simulator::start(SimConfig::new(PASSWORD).capture_interval(Duration::from_millis(200)))
                .await?;
        let port = simulator.addr().port();
        let server = Self {
            simulator: Some(simulator),
            // TLS like a real server; the simulator's certificate is self-signed.
            ado: format!(
                "Server=tcp:127.0.0.1,{port};Database={DATABASE};User Id=sa;Password={PASSWORD};Encrypt=true;TrustServerCertificate=true"
            ),
        };
        let mut master = server.connect_to("master").await?;
        master
            .simple_query(format!("CREATE DATABASE {DATABASE}"))
            .await?
            .into_results()
            .await?;
        let mut shop = server.connect().await?;
        shop.simple_query("EXEC sys.sp_cdc_enable_db;")
            .await?
            .into_results()
            .await?;
        shop.simple_query(SCHEMA).await?.into_results().await?;
        let mut seed = String::new();
        for id in 1..=5 {
            seed.push_str(&customer_insert(id));
        }
        shop.simple_query(seed).await?.into_results().await?;
        Ok(server)
    }

    /// A real server given by its ADO.NET connection string; the sample schema must exist.
    pub fn external(ado: &str) -> Self {
        Self {
            simulator: None,
            ado: ado.to_string(),
        }
    }

    async fn connect_to(&self, database: &str) -> Result<Connection> {
        let mut config = match &self.simulator {
            Some(sim) => {
                let mut c = Config::new();
                c.host("127.0.0.1");
                c.port(sim.addr().port());
                c.authentication(AuthMethod::sql_server("sa", PASSWORD));
                c.encryption(EncryptionLevel::Required);
                c.trust_cert();
                c
            }
            None => Config::from_ado_string(&self.ado)?,
        };
        config.database(database);
        let tcp = TcpStream::connect(config.get_addr()).await?;
        tcp.set_nodelay(true)?;
        Ok(Client::connect(config, tcp.compat_write()).await?)
    }

    /// A connection to the sample database.
    pub async fn connect(&self) -> Result<Connection> {
        self.connect_to(DATABASE).await
    }
}

fn customer_insert(id: u64) -> String {
    format!(
        "INSERT INTO dbo.customers VALUES ({id}, NEWID(), N'Customer {id}', N'c{id}@example.com', {}.50, SYSUTCDATETIME());\n",
        1000 + id * 250
    )
}

/// What a workload did, to compare with what arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Row changes made (each insert, update or delete of one row).
    pub changes: u64,
}

/// Runs `rounds` transactions a little apart: new customers and orders, status updates,
/// cancelled orders deleted, and at the end the deletion of customer 3, to watch a delete
/// travel through the pipeline.
pub async fn run_workload(
    conn: &mut Connection,
    rounds: u64,
    pause: Duration,
) -> Result<WorkloadStats> {
    let mut stats = WorkloadStats::default();
    for round in 1..=rounds {
        let customer = 5 + round;
        let order = round * 10;
        let mut sql = String::from("BEGIN TRANSACTION;\n");
        sql.push_str(&customer_insert(customer));
        sql.push_str(&format!(
            "INSERT INTO dbo.orders VALUES ({order}, {customer}, {}.1234, N'placed', SYSDATETIMEOFFSET()), ({}, {}, 19.9900, N'placed', SYSDATETIMEOFFSET());\n",
            round * 7,
            order + 1,
            1 + round % 5
        ));
        sql.push_str(&format!(
            "UPDATE dbo.orders SET status = N'shipped' WHERE id = {order};\n"
        ));
        stats.changes += 4;
        if round % 3 == 0 {
            sql.push_str(&format!(
                "DELETE FROM dbo.orders WHERE id = {};\n",
                order + 1
            ));
            stats.changes += 1;
        }
        if round % 4 == 0 {
            sql.push_str(&format!(
                "UPDATE dbo.customers SET credit_limit = credit_limit + 100 WHERE id = {};\n",
                1 + round % 5
            ));
            stats.changes += 1;
        }
        sql.push_str("COMMIT TRANSACTION;");
        conn.simple_query(sql).await?.into_results().await?;
        stats.transactions += 1;
        tokio::time::sleep(pause).await;
    }
    conn.simple_query("DELETE FROM dbo.customers WHERE id = 3;")
        .await?
        .into_results()
        .await?;
    stats.transactions += 1;
    stats.changes += 1;
    Ok(stats)
}
