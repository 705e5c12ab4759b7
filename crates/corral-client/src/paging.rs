//! Cursor pagination as a `futures` [`Stream`]: [`ItemStream`] fetches one page at a time,
//! only when the items before it have been consumed, and ends after the page without a
//! `next_cursor`. An error ends the stream after it is yielded.

use crate::error::{Error, Result};
use crate::model::Page;
use futures_util::Stream;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

/// A stream of the items of every page. `Unpin`, so `StreamExt::next` and
/// `TryStreamExt::try_next` / `try_collect` work on it directly.
pub type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, Error>> + Send + 'static>>;

enum Next {
    Start,
    After(String),
    Done,
}

struct State<T, F> {
    fetch: F,
    buffer: VecDeque<T>,
    next: Next,
}

/// Streams the items of the pages `fetch` returns: called with `None` for the first page,
/// then with each page's `next_cursor`.
pub(crate) fn items<T, F, Fut>(fetch: F) -> ItemStream<T>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send + 'static,
{
    let state = State { fetch, buffer: VecDeque::new(), next: Next::Start };
    Box::pin(futures_util::stream::try_unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.buffer.pop_front() {
                return Ok(Some((item, state)));
            }
            let cursor = match std::mem::replace(&mut state.next, Next::Done) {
                Next::Done => return Ok(None),
                Next::Start => None,
                Next::After(cursor) => Some(cursor),
            };
            let page = (state.fetch)(cursor).await?;
            state.buffer.extend(page.items);
            state.next = page.next_cursor.map_or(Next::Done, Next::After);
        }
    }))
}
