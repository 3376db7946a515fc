#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod caching;
pub mod client;
pub mod clock;
mod codec;
mod cookie;
pub mod crypto;
#[cfg(feature = "csrf")]
#[cfg_attr(docsrs, doc(cfg(feature = "csrf")))]
pub mod csrf;
pub mod ended;
mod error;
pub mod expiry;
pub mod flash;
mod forward;
mod id;
pub mod layer;
pub mod patch;
mod record;
mod session;
pub mod store;
#[cfg(feature = "test-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-client")))]
pub mod test_client;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod users;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;

pub use crate::caching::CachingStore;
pub use crate::cookie::{ConfigError, IdFormat, SameSite};
pub use crate::crypto::{Key, KeyError, KeyRing};
pub use crate::ended::EndReason;
pub use crate::error::{BoxError, Error};
pub use crate::expiry::Expiry;
pub use crate::forward::{Forward, Stored};
pub use crate::id::{Id, ParseIdError, RecordId};
pub use crate::layer::{SessionLayer, SessionService};
pub use crate::patch::{Applied, Change, ExpiryChange, Patch};
pub use crate::record::{Entries, EntriesIter, Record};
pub use crate::session::Session;
pub use crate::store::{ExpiredDeletion, SessionStore, StoreError};
pub use crate::users::{SessionEvent, SessionHandle, SessionInfo, SessionManager};
