//! Example programs and the embedded demo live here once the sources and sinks exist
//! (the "examples" issue).
