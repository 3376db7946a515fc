//! Every flow of the app through the router in memory (`oneshot` with a cookie jar).

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod devices;
mod items;
mod pages;
mod security;
mod sockets;
mod throttle;
mod ui;
