package io.github.cdcrs.debezium;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Debezium's SQL Server connector (embedded engine) against mssql-sim into a null sink: the
 * records are converted by JsonConverter with schemas enabled (as {@link DebeziumRun} does),
 * then only counted, with the UTF-8 size of their key and value. For scripts/debezium-perf.sh.
 *
 * <p>Usage: {@code DebeziumPerf HOST PORT PASSWORD DATABASE TABLE_INCLUDE_LIST SNAPSHOT_MODE
 * EVENTS TRIGGER_SQL WORK_DIR}. SNAPSHOT_MODE is Debezium's {@code snapshot.mode}
 * ({@code no_data} or {@code initial}). Change events are the records on table topics with a
 * value; schema change records are counted apart. When TRIGGER_SQL is not {@code -}, it runs on a
 * JDBC connection of its own once the first record (the snapshot's schema change record) has
 * arrived, so a backlog the capture job holds back (mssql-sim with manual capture) lands in the
 * change tables after the connector took its start position; the clock starts when it returns.
 * Without it the clock starts when the engine starts. Stops after EVENTS change events and prints
 * one line {@code perf {...}} with the count, bytes, seconds, and this process's peak RSS
 * ({@code VmHWM}) and CPU seconds (over its life, and while the clock ran). Exits 1 when the engine failed.
 *
 * <p>Deletes give no tombstone here ({@code tombstones.on.delete=false}) so both sides of the
 * comparison produce one record per change.
 */
public final class DebeziumPerf {
  private DebeziumPerf() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 9) {
      System.err.println(
          "usage: DebeziumPerf HOST PORT PASSWORD DATABASE TABLE_INCLUDE_LIST SNAPSHOT_MODE EVENTS TRIGGER_SQL WORK_DIR");
      System.exit(2);
    }
    String host = args[0];
    String port = args[1];
    String password = args[2];
    String database = args[3];
    long expected = Long.parseLong(args[6]);
    String trigger = args[7];
    Path work = Path.of(args[8]);
    Files.createDirectories(work);

    Properties p =
        EngineProperties.sqlServer(
            "cdc-rs-debezium-perf", work, host, port, password, database, args[4], args[5]);
    // One record per change, as our side writes: no tombstone after a delete.
    p.setProperty("tombstones.on.delete", "false");

    AtomicLong events = new AtomicLong();
    AtomicLong other = new AtomicLong();
    AtomicLong bytes = new AtomicLong();
    AtomicLong lastNanos = new AtomicLong();
    AtomicReference<String> failure = new AtomicReference<>();
    CountDownLatch first = new CountDownLatch(1);
    CountDownLatch done = new CountDownLatch(1);
    CountDownLatch enough = new CountDownLatch(1);
    String tablePrefix = "server1." + database + ".";

    DebeziumEngine<ChangeEvent<String, String>> engine =
        DebeziumEngine.create(Json.class)
            .using(p)
            .using(
                (success, message, error) -> {
                  if (!success) {
                    failure.set(message + (error == null ? "" : ": " + error));
                  }
                  done.countDown();
                })
            .notifying(
                record -> {
                  String value = record.value();
                  String key = record.key();
                  long size =
                      (key == null ? 0 : utf8Length(key)) + (value == null ? 0 : utf8Length(value));
                  bytes.addAndGet(size);
                  first.countDown();
                  if (value != null && record.destination().startsWith(tablePrefix)) {
                    if (events.incrementAndGet() >= expected) {
                      lastNanos.set(System.nanoTime());
                      enough.countDown();
                    }
                  } else {
                    other.incrementAndGet();
                  }
                })
            .build();
    ExecutorService ex = Executors.newSingleThreadExecutor();
    long engineStart = System.nanoTime();
    ex.execute(engine);
    long start = engineStart;
    double cpuAtStart = cpuSeconds();
    if (!"-".equals(trigger)) {
      while (!first.await(200, TimeUnit.MILLISECONDS)) {
        if (done.getCount() == 0) {
          break;
        }
      }
      String url =
          "jdbc:sqlserver://" + host + ":" + port + ";databaseName=" + database
              + ";encrypt=false;trustServerCertificate=true";
      try (Connection c = DriverManager.getConnection(url, "sa", password);
          Statement s = c.createStatement()) {
        s.execute(trigger);
      }
      start = System.nanoTime();
      cpuAtStart = cpuSeconds();
    }
    while (!enough.await(200, TimeUnit.MILLISECONDS)) {
      if (done.getCount() == 0) {
        break;
      }
    }
    long end = lastNanos.get() == 0 ? System.nanoTime() : lastNanos.get();
    double seconds = (end - start) / 1e9;
    String line =
        String.format(
            "perf {\"side\":\"debezium\",\"events\":%d,\"other_records\":%d,\"bytes\":%d,"
                + "\"seconds\":%.3f,\"events_per_s\":%.0f,\"vm_hwm_kb\":%d,\"cpu_s\":%.2f,"
                + "\"cpu_clocked_s\":%.2f,\"max_heap_mb\":%d}",
            events.get(),
            other.get(),
            bytes.get(),
            seconds,
            events.get() / seconds,
            status("VmHWM:"),
            cpuSeconds(),
            cpuSeconds() - cpuAtStart,
            Runtime.getRuntime().maxMemory() / (1024 * 1024));
    System.out.println(line);
    System.out.flush();
    engine.close();
    ex.shutdown();
    ex.awaitTermination(60, TimeUnit.SECONDS);
    if (failure.get() != null) {
      System.err.println("DebeziumPerf: the engine failed: " + failure.get());
      System.exit(1);
    }
    System.exit(events.get() >= expected ? 0 : 3);
  }

  private static long utf8Length(String s) {
    return s.getBytes(StandardCharsets.UTF_8).length;
  }

  /** A {@code /proc/self/status} field in kB (0 when absent). */
  private static long status(String field) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith(field)) {
        return Long.parseLong(l.substring(field.length()).trim().split("\\s+")[0]);
      }
    }
    return 0;
  }

  /** User + system CPU seconds of this process so far ({@code /proc/self/stat}, 100 ticks/s). */
  private static double cpuSeconds() throws IOException {
    String stat = Files.readString(Path.of("/proc/self/stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    // Fields 14 and 15 of proc(5) (utime, stime) are 11 and 12 after the command name.
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
  }
}
