//! What is known about an original, the bounds on a tenant's, and list pages.

use serde::Serialize;

/// An original's metadata: what `PUT`, `GET` and `HEAD /v1/originals/{name}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OriginalMeta {
    /// The name (the grammar of `OriginalName`).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The format read from its header (`jpeg`, `png`, `webp`, `avif`, `heic`, `gif`).
    pub format: String,
    /// Width in pixels, as stored (before EXIF orientation).
    pub width: u32,
    /// Height in pixels, as stored.
    pub height: u32,
    /// Frames: 1 for a still, more for an animated GIF or WebP.
    pub frames: u32,
    /// Lowercase hex SHA-256 of the bytes; variant ETags derive from it.
    pub content_hash: String,
    /// Upload time (RFC 3339, UTC).
    pub uploaded_at: String,
}

/// A tenant's bounds on stored originals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes.
    pub max_bytes: u64,
    /// Number of originals.
    pub max_count: u64,
}

/// What a tenant stores now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Number of originals.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One page of a listing, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// Originals in name order.
    pub originals: Vec<OriginalMeta>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

impl Page {
    /// The page of `rows`, fetched in name order with one more than `limit`:
    /// the extra row is not returned, it only says there is a next page.
    pub fn from_rows(mut rows: Vec<OriginalMeta>, limit: u32) -> Self {
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|m| m.name.clone())
        } else {
            None
        };
        Self {
            originals: rows,
            next_cursor,
        }
    }
}
