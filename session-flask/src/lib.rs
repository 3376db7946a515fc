#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod error;
mod flashes;
mod format;
mod json;
mod msgpack;
mod signer;
mod value;

pub use crate::error::{KeyError, LoadError};
pub use crate::flashes::{flash, take_flashes, FLASHES_KEY};
pub use crate::format::{flask_cookie_layer, FlaskCookie, PERMANENT_KEY};
pub use crate::signer::{FlaskSerializer, Loaded, SecretKey, DEFAULT_LIFETIME, MAX_DECOMPRESSED};
pub use crate::value::FlaskValue;
