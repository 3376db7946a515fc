//! The shared store contract, against SQLite files and the real PostgreSQL server.

mod common;

mod sqlite {
    session_core::store_conformance_tests!(super::common::sqlite());
    session_core::history_tests!(super::common::sqlite());
}

mod sqlite_users {
    session_core::user_index_tests!(super::common::sqlite());
}

mod sqlite_expired {
    session_core::expired_deletion_tests!(super::common::sqlite());
}

mod postgres {
    session_core::store_conformance_tests!(super::common::postgres());
    session_core::history_tests!(super::common::postgres());
}

mod postgres_users {
    session_core::user_index_tests!(super::common::postgres());
}

mod postgres_expired {
    session_core::expired_deletion_tests!(super::common::postgres());
}
