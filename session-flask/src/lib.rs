#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod error;
mod json;
mod msgpack;
mod signer;
mod value;

pub use crate::error::{KeyError, LoadError};
pub use crate::signer::{FlaskSerializer, Loaded, SecretKey, DEFAULT_LIFETIME, MAX_DECOMPRESSED};
pub use crate::value::FlaskValue;
