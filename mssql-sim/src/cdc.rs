//! SQL Server change data capture: LSNs, the capture job and the `fn_cdc_*` functions.

pub(crate) mod capture;
pub(crate) mod functions;
pub mod lsn;
