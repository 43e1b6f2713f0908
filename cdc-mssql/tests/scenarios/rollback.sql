-- A rolled-back transaction leaves no change rows.
BEGIN TRANSACTION;
INSERT INTO dbo.customers (id, name, credit) VALUES (99, N'Ghost', NULL);
UPDATE dbo.customers SET name = N'Nobody' WHERE id = 1;
ROLLBACK TRANSACTION;
GO
