package io.github.cdcrs.judge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Collectors;
import javax.xml.parsers.DocumentBuilderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.connect.data.ConnectSchema;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;

/**
 * An independent judge of what cdc-rs writes to Kafka, built only on Apache Kafka's own Java
 * consumer and Kafka Connect's {@link JsonConverter} (schemas enabled), the code that Kafka
 * Connect sinks run on Debezium's topics.
 *
 * <pre>
 * Judge topics --bootstrap HOST:PORT --topic T [--topic T ...] [--expect-events N]
 *     Reads every record of the topics with isolation.level=read_committed up to the last
 *     stable offset, decodes keys and values with JsonConverter and checks: each value is a
 *     Debezium envelope whose Connect schema validates its value (ConnectSchema.validateValue:
 *     Decimal arrives as BigDecimal with the schema's scale, and so on); the key equals the
 *     primary-key fields of `after` (of `before` for deletes); each tombstone follows a delete of
 *     its key; with --expect-events, the number of change events (non-tombstones) is N.
 *
 * Judge expect --bootstrap HOST:PORT --topic T --expected FILE
 *     As `topics` on one topic, then compares each change event, in offset order, with the
 *     expectation file written by the Rust test: op, and for every column of before/after the
 *     Connect type, the schema name (Debezium's semantic type) and the value in a canonical
 *     form (see canonical()).
 * </pre>
 *
 * Exit status 0 when everything holds; 1 with the failures on stderr.
 */
public final class Judge {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final List<String> failures = new ArrayList<>();

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      usage();
    }
    Map<String, List<String>> options = new HashMap<>();
    for (int i = 1; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        usage();
      }
      options.computeIfAbsent(args[i].substring(2), k -> new ArrayList<>()).add(args[i + 1]);
    }
    String bootstrap = one(options, "bootstrap");
    List<String> topics = options.getOrDefault("topic", List.of());
    if (topics.isEmpty()) {
      usage();
    }
    Judge judge = new Judge();
    switch (args[0]) {
      case "topics" -> {
        long events = 0;
        for (String topic : topics) {
          events += judge.checkTopic(bootstrap, topic).size();
        }
        if (options.containsKey("expect-events")) {
          long expected = Long.parseLong(one(options, "expect-events"));
          judge.check(events == expected, "topics hold " + events + " change events, expected " + expected);
        }
        System.out.println("judge: " + topics.size() + " topics, " + events + " change events");
      }
      case "expect" -> {
        if (topics.size() != 1) {
          usage();
        }
        List<Struct> events = judge.checkTopic(bootstrap, topics.get(0));
        JsonNode expected = JSON.readTree(new File(one(options, "expected")));
        judge.compare(events, expected);
        System.out.println("judge: " + events.size() + " change events equal the expected rows");
      }
      default -> usage();
    }
    if (!judge.failures.isEmpty()) {
      int shown = Math.min(judge.failures.size(), 50);
      System.err.println("judge FAILED (" + judge.failures.size() + " failures):");
      judge.failures.subList(0, shown).forEach(f -> System.err.println("  " + f));
      System.exit(1);
    }
    System.out.println("judge: passed");
  }

  private static void usage() {
    System.err.println(
        "usage: Judge topics --bootstrap HOST:PORT --topic T [--topic T...] [--expect-events N]\n"
            + "       Judge expect --bootstrap HOST:PORT --topic T --expected FILE");
    System.exit(2);
  }

  private static String one(Map<String, List<String>> options, String name) {
    List<String> values = options.get(name);
    if (values == null || values.size() != 1) {
      usage();
    }
    return values.get(0);
  }

  private void check(boolean ok, String failure) {
    if (!ok) {
      failures.add(failure);
    }
  }

  /** Every record of the topic up to the last stable offset, read_committed, offset order per partition. */
  private static List<ConsumerRecord<byte[], byte[]>> readCommitted(String bootstrap, String topic) {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, java.time.Duration.ofSeconds(30));
      if (infos == null || infos.isEmpty()) {
        throw new IllegalStateException("topic " + topic + " does not exist");
      }
      List<TopicPartition> partitions =
          infos.stream().map(p -> new TopicPartition(topic, p.partition())).collect(Collectors.toList());
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // With read_committed, endOffsets is the last stable offset.
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions, java.time.Duration.ofSeconds(30));
      long deadline = System.nanoTime() + java.time.Duration.ofSeconds(120).toNanos();
      while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("reading " + topic + " did not reach " + end + " in 120 s");
        }
        consumer.poll(java.time.Duration.ofMillis(200)).forEach(records::add);
      }
    }
    records.sort((a, b) -> a.partition() != b.partition()
        ? Integer.compare(a.partition(), b.partition())
        : Long.compare(a.offset(), b.offset()));
    return records;
  }

  /** Checks a topic; returns its change events (decoded envelopes) in partition and offset order. */
  private List<Struct> checkTopic(String bootstrap, String topic) {
    JsonConverter keys = new JsonConverter();
    keys.configure(Map.of("schemas.enable", "true"), true);
    JsonConverter values = new JsonConverter();
    values.configure(Map.of("schemas.enable", "true"), false);
    List<Struct> events = new ArrayList<>();
    // The last op seen per (partition, key), to check that tombstones follow deletes.
    Map<String, String> lastOp = new HashMap<>();
    int tombstones = 0;
    for (ConsumerRecord<byte[], byte[]> record : readCommitted(bootstrap, topic)) {
      String at = topic + "/" + record.partition() + "@" + record.offset();
      SchemaAndValue key;
      SchemaAndValue value;
      try {
        key = record.key() == null ? SchemaAndValue.NULL : keys.toConnectData(topic, record.key());
        value = values.toConnectData(topic, record.value());
      } catch (RuntimeException e) {
        failures.add(at + ": JsonConverter cannot read it: " + e);
        continue;
      }
      String keyText = record.key() == null ? "" : new String(record.key(), StandardCharsets.UTF_8);
      String slot = record.partition() + "|" + keyText;
      if (record.value() == null) {
        check(record.key() != null, at + ": a tombstone without a key");
        tombstones++;
        check("d".equals(lastOp.get(slot)), at + ": a tombstone that does not follow a delete of its key");
        lastOp.put(slot, "tombstone");
        continue;
      }
      if (!(value.value() instanceof Struct envelope)) {
        failures.add(at + ": the value is not a struct with a schema");
        continue;
      }
      try {
        ConnectSchema.validateValue(value.schema(), envelope);
        envelope.validate();
      } catch (RuntimeException e) {
        failures.add(at + ": the value does not match its Connect schema: " + e.getMessage());
        continue;
      }
      String op = envelope.getString("op");
      check(List.of("c", "u", "d", "r", "t").contains(op), at + ": op " + op);
      if ("t".equals(op)) {
        // Debezium's truncate events have no key and no row images.
        check(record.key() == null, at + ": a truncate event with a key");
        lastOp.put(slot, op);
        events.add(envelope);
        continue;
      }
      if (!(key.value() instanceof Struct keyStruct)) {
        failures.add(at + ": the key is not a struct with a schema");
        continue;
      }
      try {
        ConnectSchema.validateValue(key.schema(), keyStruct);
      } catch (RuntimeException e) {
        failures.add(at + ": the key does not match its Connect schema: " + e.getMessage());
        continue;
      }
      Struct row = "d".equals(op) ? envelope.getStruct("before") : envelope.getStruct("after");
      if (row == null) {
        failures.add(at + ": op " + op + " without its row image");
        continue;
      }
      for (Field field : keyStruct.schema().fields()) {
        Object inKey = keyStruct.get(field);
        Object inRow = row.schema().field(field.name()) == null ? "<missing>" : row.get(field.name());
        check(Objects.equals(inKey, inRow), at + ": key field " + field.name() + " = " + inKey + ", row has " + inRow);
      }
      check(envelope.getStruct("source") != null, at + ": no source block");
      checkSemanticTypes(at, envelope.getStruct("before"));
      checkSemanticTypes(at, row);
      lastOp.put(slot, op);
      events.add(envelope);
    }
    System.out.println("judge: " + topic + ": " + events.size() + " change events, " + tombstones + " tombstones");
    return events;
  }

  /** Checks that Debezium's semantic types arrive as what their schema promises. */
  private void checkSemanticTypes(String at, Struct row) {
    if (row == null) {
      return;
    }
    for (Field field : row.schema().fields()) {
      Object v = row.get(field);
      Schema s = field.schema();
      if (v == null || s.name() == null) {
        continue;
      }
      String where = at + ": " + field.name() + " (" + s.name() + ")";
      switch (s.name()) {
        case Decimal.LOGICAL_NAME -> check(v instanceof BigDecimal d
                && d.scale() == Integer.parseInt(s.parameters().get(Decimal.SCALE_FIELD)),
            where + " is " + v.getClass().getSimpleName() + " " + v + ", not a BigDecimal of the schema's scale");
        case "io.debezium.time.Date", "io.debezium.time.Time" -> check(v instanceof Integer, where + " is not an int32");
        case "io.debezium.time.MicroTime", "io.debezium.time.NanoTime", "io.debezium.time.Timestamp",
            "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp" ->
            check(v instanceof Long, where + " is not an int64");
        case "io.debezium.time.ZonedTimestamp" -> {
          try {
            OffsetDateTime.parse((String) v, DateTimeFormatter.ISO_OFFSET_DATE_TIME);
          } catch (RuntimeException e) {
            failures.add(where + " is not an ISO-8601 timestamp with offset: " + v);
          }
        }
        case "io.debezium.data.Uuid" -> {
          try {
            UUID.fromString((String) v);
          } catch (RuntimeException e) {
            failures.add(where + " is not a UUID: " + v);
          }
        }
        case "io.debezium.data.Xml" -> {
          try {
            DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(((String) v).getBytes(StandardCharsets.UTF_8)));
          } catch (Exception e) {
            failures.add(where + " is not well-formed XML: " + v);
          }
        }
        default -> { }
      }
    }
  }

  private void compare(List<Struct> events, JsonNode expected) {
    check(events.size() == expected.size(), "the topic holds " + events.size() + " change events, expected " + expected.size());
    for (int i = 0; i < Math.min(events.size(), expected.size()); i++) {
      Struct event = events.get(i);
      JsonNode want = expected.get(i);
      String at = "event " + i;
      check(want.get("op").asText().equals(event.getString("op")),
          at + ": op " + event.getString("op") + ", expected " + want.get("op").asText());
      for (String image : List.of("before", "after")) {
        compareRow(at + " " + image, event.getStruct(image), want.get(image));
      }
    }
  }

  private void compareRow(String at, Struct row, JsonNode want) {
    if (want == null || want.isNull()) {
      check(row == null, at + ": present, expected null");
      return;
    }
    if (row == null) {
      failures.add(at + ": null, expected a row");
      return;
    }
    Map<String, JsonNode> columns = new TreeMap<>();
    want.fields().forEachRemaining(e -> columns.put(e.getKey(), e.getValue()));
    check(row.schema().fields().size() == columns.size(),
        at + ": " + row.schema().fields().size() + " fields, expected " + columns.size());
    for (Map.Entry<String, JsonNode> column : columns.entrySet()) {
      String where = at + "." + column.getKey();
      Field field = row.schema().field(column.getKey());
      if (field == null) {
        failures.add(where + ": missing");
        continue;
      }
      Schema s = field.schema();
      JsonNode spec = column.getValue();
      check(s.type().getName().equals(spec.get("type").asText()),
          where + ": Connect type " + s.type().getName() + ", expected " + spec.get("type").asText());
      String wantName = spec.get("name").isNull() ? null : spec.get("name").asText();
      check(Objects.equals(s.name(), wantName), where + ": schema name " + s.name() + ", expected " + wantName);
      String got;
      try {
        got = canonical(s, row.get(field));
      } catch (RuntimeException e) {
        failures.add(where + ": " + e);
        continue;
      }
      String wantValue = spec.get("value").isNull() ? null : spec.get("value").asText();
      check(Objects.equals(got, wantValue), where + ": " + got + ", expected " + wantValue);
    }
  }

  private static final BigInteger THOUSAND = BigInteger.valueOf(1_000);
  private static final BigInteger MILLION = BigInteger.valueOf(1_000_000);

  /**
   * The value in the form the expectation file uses: integers and booleans as text; floats as
   * their IEEE bits; decimals as unscaled/scale; bytes as lowercase hex; dates as days since the
   * epoch; times as nanoseconds since midnight and timestamps as nanoseconds since the epoch
   * (whatever unit the semantic type carries); zoned timestamps as epoch-nanoseconds@offset-minutes;
   * UUIDs lowercase; other strings as they are.
   */
  private static String canonical(Schema s, Object v) {
    if (v == null) {
      return null;
    }
    String name = s.name() == null ? "" : s.name();
    switch (name) {
      case Decimal.LOGICAL_NAME -> {
        BigDecimal d = (BigDecimal) v;
        return d.unscaledValue() + "/" + d.scale();
      }
      case "io.debezium.time.Date" -> {
        return Integer.toString((Integer) v);
      }
      case "io.debezium.time.Time" -> {
        return BigInteger.valueOf((Integer) v).multiply(MILLION).toString();
      }
      case "io.debezium.time.MicroTime", "io.debezium.time.MicroTimestamp" -> {
        return BigInteger.valueOf((Long) v).multiply(THOUSAND).toString();
      }
      case "io.debezium.time.NanoTime", "io.debezium.time.NanoTimestamp" -> {
        return Long.toString((Long) v);
      }
      case "io.debezium.time.Timestamp" -> {
        return BigInteger.valueOf((Long) v).multiply(MILLION).toString();
      }
      case "io.debezium.time.ZonedTimestamp" -> {
        OffsetDateTime t = OffsetDateTime.parse((String) v, DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        BigInteger nanos = BigInteger.valueOf(t.toEpochSecond()).multiply(BigInteger.valueOf(1_000_000_000))
            .add(BigInteger.valueOf(t.getNano()));
        return nanos + "@" + t.getOffset().getTotalSeconds() / 60;
      }
      case "io.debezium.data.Uuid" -> {
        return UUID.fromString((String) v).toString();
      }
      default -> { }
    }
    return switch (s.type()) {
      case FLOAT32 -> Integer.toString(Float.floatToRawIntBits((Float) v));
      case FLOAT64 -> Long.toString(Double.doubleToRawLongBits((Double) v));
      case BYTES -> HexFormat.of().formatHex(v instanceof ByteBuffer b ? bytes(b) : (byte[]) v);
      case INT8, INT16, INT32, INT64, BOOLEAN, STRING -> v.toString();
      default -> throw new IllegalArgumentException("unexpected Connect type " + s.type());
    };
  }

  private static byte[] bytes(ByteBuffer buffer) {
    ByteBuffer copy = buffer.duplicate();
    byte[] out = new byte[copy.remaining()];
    copy.get(out);
    return out;
  }
}
