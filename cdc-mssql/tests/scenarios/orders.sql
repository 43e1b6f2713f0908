-- Two tables with CDC, used by the streaming and resume tests.
CREATE TABLE dbo.customers (
    id int NOT NULL PRIMARY KEY,
    name nvarchar(100) NOT NULL,
    credit decimal(38, 10) NULL
);
CREATE TABLE dbo.orders (
    id int NOT NULL PRIMARY KEY,
    customer_id int NOT NULL,
    amount money NOT NULL,
    placed datetime2(7) NOT NULL
);
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL;
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL;
GO
