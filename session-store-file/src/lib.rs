#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cycle;
mod disk;
mod index;
mod layout;
mod lock;
mod ops;
mod store;
mod sweep;

pub use crate::store::FileStore;
