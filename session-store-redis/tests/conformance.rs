//! The shared store contract, against a real Redis server and a real 3-master Cluster.

mod common;

mod single_node {
    session_core::store_conformance_tests!(super::common::single_store());
}

mod cluster {
    session_core::store_conformance_tests!(super::common::cluster_store());
}
