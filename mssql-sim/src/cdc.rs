//! SQL Server change data capture: capture instances, the capture job and the `fn_cdc_*`
//! functions (LSNs belong to the engine's log, [`crate::engine::log`]).

pub(crate) mod capture;
pub(crate) mod job;
pub(crate) mod state;
