//! Shell completions and man pages, made from [`crate::args::command`].
