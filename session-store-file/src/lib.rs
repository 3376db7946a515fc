#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;
mod cycle;
mod disk;
mod index;
mod layout;
mod lock;
mod ops;
mod store;
mod sweep;

pub use crate::store::FileStore;
