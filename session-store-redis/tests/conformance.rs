//! The shared store contract, against a real Redis server and a real 3-master Cluster.

mod common;

mod single_node {
    session_core::store_conformance_tests!(super::common::single_store());
}

mod cluster {
    session_core::store_conformance_tests!(super::common::cluster_store());
}

/// The per-user index: each case gets a fresh store with its own prefix.
mod single_node_users {
    session_core::user_index_tests!(super::common::single_store());
}

mod cluster_users {
    session_core::user_index_tests!(super::common::cluster_store());
}
