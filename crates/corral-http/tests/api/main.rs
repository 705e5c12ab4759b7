//! HTTP integration tests: the real router over a real database.

mod accounts;
mod admin;
mod assert;
mod auth;
mod bulk;
mod changes;
mod concurrency;
mod contacts;
mod contract;
mod custom_attributes;
mod docs;
mod duplicates;
mod edge;
mod errors;
mod helpers;
mod isolation;
mod listing;
mod merge;
mod metrics;
mod openapi;
mod query;
mod ratelimit;
mod related_filters;
mod relationships;
mod v2;
mod webhooks;
