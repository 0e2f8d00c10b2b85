//! vmclone service library.
