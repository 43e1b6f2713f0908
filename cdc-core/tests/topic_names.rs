//! Topic names made legal for Kafka as Debezium makes them: `[a-zA-Z0-9._-]`, at most 249.

use cdc_core::TableId;
use cdc_core::topic::{MAX_TOPIC_NAME_LENGTH, data_change_topic, sanitize_topic_name};

#[test]
fn a_space_in_a_table_name_becomes_an_underscore() {
    let table = TableId::new("demo", "dbo", "Order Details");
    assert_eq!(
        data_change_topic("erp", &table),
        "erp.demo.dbo.Order_Details"
    );
}

#[test]
fn each_non_ascii_character_becomes_one_underscore_per_utf16_unit() {
    // `ö` and `ß` are one UTF-16 unit each; the emoji is a surrogate pair (two Java chars,
    // so two underscores in Debezium).
    let table = TableId::new("demo", "dbo", "Größe📦");
    assert_eq!(data_change_topic("erp", &table), "erp.demo.dbo.Gr__e__");
    let cyrillic = TableId::new("demo", "dbo", "Заказы");
    assert_eq!(data_change_topic("erp", &cyrillic), "erp.demo.dbo.______");
}

#[test]
fn a_dot_in_a_table_name_is_legal_and_kept() {
    let table = TableId::new("demo", "dbo", "orders.2024");
    assert_eq!(data_change_topic("erp", &table), "erp.demo.dbo.orders.2024");
}

#[test]
fn every_character_kafka_refuses_is_replaced_and_the_rest_kept() {
    let table = TableId::new("my db", "sales-eu", "a/b\\c:d*e\"f[g]h#i%j'k");
    let topic = data_change_topic("erp_1", &table);
    assert_eq!(topic, "erp_1.my_db.sales-eu.a_b_c_d_e_f_g_h_i_j_k");
    assert!(
        topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    );
}

#[test]
fn a_name_longer_than_kafka_allows_is_cut_to_249() {
    let table = TableId::new("demo", "dbo", "t".repeat(300));
    let topic = data_change_topic("erp", &table);
    assert_eq!(topic.len(), MAX_TOPIC_NAME_LENGTH);
    assert!(topic.starts_with("erp.demo.dbo.ttt"));
    // Cut after replacing, so a name of multi-byte characters is cut at 249 characters.
    let wide = sanitize_topic_name(&"é".repeat(300)).into_owned();
    assert_eq!(wide, "_".repeat(249));
}

#[test]
fn dot_and_dot_dot_become_underscores() {
    assert_eq!(sanitize_topic_name("."), "_");
    assert_eq!(sanitize_topic_name(".."), "__");
    assert_eq!(sanitize_topic_name("..."), "...");
}

#[test]
fn a_legal_name_is_borrowed_unchanged() {
    assert!(matches!(
        sanitize_topic_name("erp.demo.dbo.items"),
        std::borrow::Cow::Borrowed("erp.demo.dbo.items")
    ));
}
