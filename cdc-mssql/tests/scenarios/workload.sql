-- Three transactions: one autocommit insert, one spanning two tables, one with an update,
-- a primary-key update and a delete.
INSERT INTO dbo.customers (id, name, credit) VALUES (1, N'Ada', 1234567890123456789012345678.0123456789);
GO
BEGIN TRANSACTION;
INSERT INTO dbo.customers (id, name, credit) VALUES (2, N'Grace', NULL), (3, N'Linus', 0.5);
INSERT INTO dbo.orders (id, customer_id, amount, placed) VALUES (10, 2, 922337203685477.5807, '2024-05-17T08:30:00.1234567');
UPDATE dbo.customers SET credit = 10 WHERE id = 1;
COMMIT TRANSACTION;
GO
BEGIN TRANSACTION;
UPDATE dbo.customers SET name = N'Grace Hopper' WHERE id = 2;
UPDATE dbo.customers SET id = 4 WHERE id = 3;
DELETE FROM dbo.orders WHERE id = 10;
COMMIT TRANSACTION;
GO
