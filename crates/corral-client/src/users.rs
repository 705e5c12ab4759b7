//! The user directory, read-only: the admin list (`GET /api/admin/users`, admin) and the v2
//! user routes (`GET /api/v2/user/{id}`, `POST /api/v2/user/_query`, `users:read`). Users
//! are added by the server on a human token's first request, or with `corral user add`.

use crate::client::{Client, Request};
use crate::error::Result;
use crate::model::{Page, RecordV2, User};
use crate::paging::ItemStream;
use crate::query::Query;
use crate::records::{Data, query_page, query_stream};
use futures_util::TryStreamExt;

/// The user directory. Get one with [`Client::users`].
#[derive(Debug, Clone)]
pub struct Users {
    client: Client,
}

impl Users {
    pub(crate) fn new(client: Client) -> Self {
        Users { client }
    }

    /// Every user of the tenant (admin), with `usr-…` ids.
    pub async fn list(&self) -> Result<Vec<User>> {
        let data: Data<Vec<User>> = self.client.json(Request::get(&["api", "admin", "users"])).await?;
        Ok(data.data)
    }

    /// One user (id in either spelling).
    pub async fn get(&self, id: &str) -> Result<User> {
        let data: Data<RecordV2> = self.client.json(Request::get(&["api", "v2", "user", id])).await?;
        Ok(User::from_record(&data.data))
    }

    /// One page of a user query (filters on `id`, `email`, `display_name`, `is_active`,
    /// `created_at`, `updated_at`, `version`; no counts).
    pub async fn query(&self, query: &Query) -> Result<Page<User>> {
        let page: Page<RecordV2> = query_page(&self.client, "user", query).await?;
        Ok(Page {
            items: page.items.iter().map(User::from_record).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
            total_is_estimate: page.total_is_estimate,
        })
    }

    /// Every user a query matches, page after page.
    pub fn query_stream(&self, query: Query) -> ItemStream<User> {
        Box::pin(query_stream::<RecordV2>(self.client.clone(), "user", query).map_ok(|r| User::from_record(&r)))
    }
}
