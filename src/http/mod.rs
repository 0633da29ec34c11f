//! Everything HTTP that is not S3, shared by the S3 client and the
//! credential endpoints: the agent each keeps (TLS roots, proxy, time
//! limits, a resolver that marks names that do not resolve), and what a
//! failed exchange means. Nothing here knows what is asked or answered.

mod agent;
mod failure;
mod resolver;
mod tls;

pub(crate) use agent::{Limits, Setup, agent, proxy};
pub(crate) use failure::{Failure, judge};
pub(crate) use tls::{Trust, trusting_nothing};
