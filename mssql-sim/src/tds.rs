//! The TDS 7.4 wire protocol, server side.

pub(crate) mod login;
pub(crate) mod packet;
pub(crate) mod prelogin;
pub(crate) mod prepared;
pub(crate) mod rpc;
pub(crate) mod tokens;
pub(crate) mod types;
