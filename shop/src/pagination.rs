//! Page and per-page parameters shared by every listing.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;
/// Deep pages cost a scan each; 1,000 pages of 100 covers ten times the default catalog.
pub const MAX_PAGE: i64 = 1_000;

/// A validated page request (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
}

impl PageRequest {
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::validation(format!("page must be between 1 and {MAX_PAGE}")));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ApiError::validation(format!("per_page must be between 1 and {MAX_PER_PAGE}")));
        }
        Ok(Self { page, per_page })
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// One page of a listing, with the total count so clients can page through it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(PageRequest::new(None, None).ok(), Some(PageRequest { page: 1, per_page: DEFAULT_PER_PAGE }));
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(MAX_PAGE + 1), None).is_err());
        assert!(PageRequest::new(None, Some(0)).is_err());
        assert!(PageRequest::new(None, Some(MAX_PER_PAGE + 1)).is_err());
        assert_eq!(PageRequest::new(Some(3), Some(10)).map(|p| p.offset()).ok(), Some(20));
    }
}
