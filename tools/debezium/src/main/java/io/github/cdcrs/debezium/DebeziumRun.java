package io.github.cdcrs.debezium;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Debezium's SQL Server connector (embedded engine) against mssql-sim: writes every record as one
 * JSON line {@code {"topic":T,"key":K,"value":V}} where K and V are what Kafka Connect's
 * JsonConverter makes of them with schemas enabled (V is null for a tombstone).
 *
 * <p>Usage: {@code DebeziumRun HOST PORT PASSWORD DATABASE TABLE_INCLUDE_LIST OUT_FILE MAX_RECORDS
 * IDLE_SECONDS WORK_DIR}. Stops after MAX_RECORDS records, or when no record arrived for
 * IDLE_SECONDS after the first one (or for 4 × IDLE_SECONDS before it). Exits 0 when it stopped
 * that way, 1 when the engine failed (its error is printed), 3 when no record arrived at all.
 */
public final class DebeziumRun {
  private DebeziumRun() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 9) {
      System.err.println(
          "usage: DebeziumRun HOST PORT PASSWORD DATABASE TABLE_INCLUDE_LIST OUT_FILE MAX_RECORDS IDLE_SECONDS WORK_DIR");
      System.exit(2);
    }
    Path out = Path.of(args[5]);
    long max = Long.parseLong(args[6]);
    long idleMs = Long.parseLong(args[7]) * 1000;
    Path work = Path.of(args[8]);
    Files.createDirectories(work);

    Properties p =
        EngineProperties.sqlServer(
            "cdc-rs-debezium", work, args[0], args[1], args[2], args[3], args[4], "initial");

    AtomicLong count = new AtomicLong();
    AtomicLong last = new AtomicLong(System.currentTimeMillis());
    AtomicReference<Throwable> failure = new AtomicReference<>();
    AtomicReference<String> failureMessage = new AtomicReference<>();
    CountDownLatch done = new CountDownLatch(1);
    CountDownLatch enough = new CountDownLatch(1);

    try (BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
      DebeziumEngine<ChangeEvent<String, String>> engine =
          DebeziumEngine.create(Json.class)
              .using(p)
              .using(
                  (success, message, error) -> {
                    if (!success) {
                      failureMessage.set(message);
                      failure.set(error);
                    }
                    done.countDown();
                  })
              .notifying(
                  record -> {
                    synchronized (w) {
                      try {
                        w.write("{\"topic\":" + quote(record.destination()) + ",\"key\":" + orNull(record.key())
                            + ",\"value\":" + orNull(record.value()) + "}\n");
                        w.flush();
                      } catch (IOException e) {
                        throw new RuntimeException(e);
                      }
                    }
                    last.set(System.currentTimeMillis());
                    if (count.incrementAndGet() >= max) {
                      enough.countDown();
                    }
                  })
              .build();
      ExecutorService ex = Executors.newSingleThreadExecutor();
      ex.execute(engine);
      long started = System.currentTimeMillis();
      while (true) {
        if (enough.await(200, TimeUnit.MILLISECONDS) || done.getCount() == 0) {
          break;
        }
        long now = System.currentTimeMillis();
        long quiet = count.get() == 0 ? now - started : now - last.get();
        long limit = count.get() == 0 ? 4 * idleMs : idleMs;
        if (quiet > limit) {
          break;
        }
      }
      if (done.getCount() != 0) {
        engine.close();
      }
      ex.shutdown();
      ex.awaitTermination(60, TimeUnit.SECONDS);
    }
    System.err.println("DebeziumRun: " + count.get() + " records written to " + out);
    if (failure.get() != null || failureMessage.get() != null) {
      System.err.println("DebeziumRun: the engine failed: " + failureMessage.get());
      if (failure.get() != null) {
        failure.get().printStackTrace();
      }
      System.exit(1);
    }
    System.exit(count.get() == 0 ? 3 : 0);
  }

  private static String orNull(String json) {
    return json == null ? "null" : json;
  }

  private static String quote(String s) {
    if (s == null) {
      return "null";
    }
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        b.append('\\');
      }
      b.append(c);
    }
    return b.append('"').toString();
  }
}
