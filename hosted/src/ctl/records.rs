//! `nommu-ctl`'s reader of the structured `/proc` views (`Usage`,
//! `Users`): postcard records one after another, a head first that says
//! how many of each list follow.

use serde::de::DeserializeOwned;

/// The bytes of one view not decoded yet.
pub struct Records<'a> {
    rest: &'a [u8],
    /// The view's name, for the error text.
    view: &'static str,
}

impl<'a> Records<'a> {
    pub fn new(bytes: &'a [u8], view: &'static str) -> Self {
        Self { rest: bytes, view }
    }

    /// The next record.
    pub fn take<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let (record, rest) = postcard::take_from_bytes(self.rest)
            .map_err(|e| format!("the {} view does not decode: {e}", self.view))?;
        self.rest = rest;
        Ok(record)
    }

    /// The next `count` records, of one type.
    pub fn take_list<T: DeserializeOwned>(&mut self, count: u32) -> Result<Vec<T>, String> {
        (0..count).map(|_| self.take()).collect()
    }
}
