-- A CDC round trip that runs unchanged on SQL Server and on mssql-sim.
IF DB_ID('sim_scenario') IS NOT NULL DROP DATABASE sim_scenario
GO
CREATE DATABASE sim_scenario
GO
USE sim_scenario
CREATE TABLE dbo.accounts (id int NOT NULL PRIMARY KEY, owner nvarchar(40) NOT NULL, balance decimal(12,2) NULL)
EXEC sys.sp_cdc_enable_db
GO
USE sim_scenario
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'accounts', @role_name = NULL, @supports_net_changes = 1
GO
USE sim_scenario
INSERT INTO dbo.accounts VALUES (1, N'ann', 10.00)
BEGIN TRAN
INSERT INTO dbo.accounts VALUES (2, N'bob', 20.00)
UPDATE dbo.accounts SET balance = 25.00 WHERE id = 2
DELETE FROM dbo.accounts WHERE id = 1
COMMIT TRAN
GO
USE sim_scenario
EXEC sys.sp_cdc_scan
GO
USE sim_scenario
DECLARE @from binary(10) = sys.fn_cdc_get_min_lsn('dbo_accounts'), @to binary(10) = sys.fn_cdc_get_max_lsn()
SELECT __$start_lsn, __$seqval, __$operation, id, owner, balance
FROM cdc.fn_cdc_get_all_changes_dbo_accounts(@from, @to, N'all update old')
ORDER BY __$start_lsn, __$seqval, __$operation
GO
