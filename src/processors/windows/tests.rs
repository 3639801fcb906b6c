//! Tests of the window processor.
