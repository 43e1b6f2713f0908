package io.github.cdcrs.debezium;

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * Microsoft's JDBC driver as an independent client of mssql-sim: a plain statement, a prepared
 * statement run often enough that the driver goes through sp_executesql, sp_prepexec and
 * sp_execute (and later sp_unprepare), and the DatabaseMetaData calls Debezium makes.
 *
 * <p>Usage: {@code JdbcProbe HOST PORT PASSWORD DATABASE ENCRYPT}; ENCRYPT is the driver's
 * {@code encrypt} property (false, true). Prints one {@code name: value} line per check, and
 * exits 1 on the first failure with the driver's error.
 */
public final class JdbcProbe {
  private JdbcProbe() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: JdbcProbe HOST PORT PASSWORD DATABASE ENCRYPT");
      System.exit(2);
    }
    String url =
        "jdbc:sqlserver://" + args[0] + ":" + args[1] + ";databaseName=" + args[3]
            + ";encrypt=" + args[4] + ";trustServerCertificate=true;applicationName=cdc-rs-jdbc-probe";
    Properties props = new Properties();
    props.setProperty("user", "sa");
    props.setProperty("password", args[2]);
    try (Connection c = DriverManager.getConnection(url, props)) {
      DatabaseMetaData md = c.getMetaData();
      System.out.println("product: " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
      System.out.println("driver: " + md.getDriverName() + " " + md.getDriverVersion());
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT DB_NAME() AS db, 40 + 2 AS answer")) {
        rs.next();
        System.out.println("statement: " + rs.getString(1) + " " + rs.getInt(2));
      }
      // mssql-jdbc: 1st execution sp_executesql, 2nd sp_prepexec (handle returned), then sp_execute.
      try (PreparedStatement ps = c.prepareStatement("SELECT ? + 1 AS n, ? AS s")) {
        for (int i = 1; i <= 4; i++) {
          ps.setInt(1, i * 10);
          ps.setString(2, "row" + i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            System.out.println("prepared " + i + ": " + rs.getInt(1) + " " + rs.getString(2));
          }
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT name FROM sys.databases WHERE name = ?")) {
        for (int i = 0; i < 3; i++) {
          ps.setString(1, args[3]);
          try (ResultSet rs = ps.executeQuery()) {
            System.out.println("prepared db " + i + ": " + (rs.next() ? rs.getString(1) : "<none>"));
          }
        }
      }
      System.out.println("catalog: " + c.getCatalog());
      System.out.println("autocommit: " + c.getAutoCommit());
      c.setAutoCommit(false);
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT @@TRANCOUNT")) {
        rs.next();
        System.out.println("trancount in manual commit: " + rs.getInt(1));
      }
      c.commit();
      c.setAutoCommit(true);
      c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
      System.out.println("isolation: " + c.getTransactionIsolation());
      printRows("tables", md.getTables(args[3], null, null, new String[] {"TABLE"}), 3);
      printRows("columns", md.getColumns(args[3], "dbo", "%", null), 4, 6, 7, 18);
      printRows("primary keys", md.getPrimaryKeys(args[3], "dbo", "items"), 3, 4, 5);
      System.out.println("ok");
    } catch (SQLException e) {
      System.out.println("FAILED: " + e.getErrorCode() + " " + e.getMessage());
      e.printStackTrace();
      System.exit(1);
    }
  }

  private static void printRows(String what, ResultSet rs, int... cols) throws SQLException {
    try (rs) {
      ResultSetMetaData m = rs.getMetaData();
      while (rs.next()) {
        StringBuilder b = new StringBuilder(what).append(':');
        for (int col : cols) {
          b.append(' ').append(m.getColumnName(col)).append('=').append(rs.getString(col));
        }
        System.out.println(b);
      }
    }
  }
}
