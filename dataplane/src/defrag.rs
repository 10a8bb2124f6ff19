//! IP defragmentation (placeholder; the real defragmenter replaces this file).
