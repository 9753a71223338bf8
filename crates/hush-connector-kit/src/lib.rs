//! What every Hush connector shares, so that a connector crate holds only what is particular to
//! its vendor: the vendor HTTP layer ([`http`]), secrets whose `Debug` and `Display` never show
//! the value ([`secret`]), the polling of a vendor's asynchronous job ([`poll`]).

pub mod http;
pub mod poll;
