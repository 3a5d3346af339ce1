//! Tests of the age store.
