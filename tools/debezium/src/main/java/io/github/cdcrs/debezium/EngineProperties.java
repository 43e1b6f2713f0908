package io.github.cdcrs.debezium;

import java.nio.file.Path;
import java.util.Properties;

/** The embedded engine's properties that {@link DebeziumRun} and {@link DebeziumPerf} share. */
final class EngineProperties {
  private EngineProperties() {}

  /**
   * Debezium's SQL Server connector on mssql-sim at {@code host:port} as {@code sa} without TLS:
   * topic prefix {@code server1}, offsets and schema history in files under {@code work},
   * JsonConverter with schemas, a 200 ms poll interval and no retries (a failure ends the run).
   */
  static Properties sqlServer(
      String name,
      Path work,
      String host,
      String port,
      String password,
      String database,
      String tableIncludeList,
      String snapshotMode) {
    Properties p = new Properties();
    p.setProperty("name", name);
    p.setProperty("connector.class", "io.debezium.connector.sqlserver.SqlServerConnector");
    p.setProperty("offset.storage", "org.apache.kafka.connect.storage.FileOffsetBackingStore");
    p.setProperty("offset.storage.file.filename", work.resolve("offsets.dat").toString());
    p.setProperty("offset.flush.interval.ms", "1000");
    p.setProperty("schema.history.internal", "io.debezium.storage.file.history.FileSchemaHistory");
    p.setProperty("schema.history.internal.file.filename", work.resolve("schema-history.dat").toString());
    p.setProperty("database.hostname", host);
    p.setProperty("database.port", port);
    p.setProperty("database.user", "sa");
    p.setProperty("database.password", password);
    p.setProperty("database.names", database);
    p.setProperty("database.encrypt", "false");
    p.setProperty("database.trustServerCertificate", "true");
    p.setProperty("topic.prefix", "server1");
    p.setProperty("table.include.list", tableIncludeList);
    p.setProperty("snapshot.mode", snapshotMode);
    p.setProperty("poll.interval.ms", "200");
    p.setProperty("converter.schemas.enable", "true");
    p.setProperty("key.converter.schemas.enable", "true");
    p.setProperty("value.converter.schemas.enable", "true");
    p.setProperty("errors.max.retries", "0");
    return p;
  }
}
