//! A log file in S3 as the ingest sender reads it: GetObject of the listed version (its ETag),
//! its body streamed through a synchronous reader, so a 50 MB file is never held whole.

use std::io::{self, Read};

use aws_sdk_s3::error::DisplayErrorContext;
use orgtrail_client::{LogFileOrigin, LogFileReader};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use crate::aws_access::SourceS3;

pub struct S3LogFile {
    origin: LogFileOrigin,
    s3: SourceS3,
    runtime: Handle,
}

impl S3LogFile {
    /// `runtime` runs the S3 calls; `open` is called on a blocking thread.
    pub fn new(origin: LogFileOrigin, s3: SourceS3, runtime: Handle) -> S3LogFile {
        S3LogFile {
            origin,
            s3,
            runtime,
        }
    }
}

impl LogFileReader for S3LogFile {
    fn origin(&self) -> &LogFileOrigin {
        &self.origin
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        let request = self
            .s3
            .client
            .get_object()
            .bucket(&self.origin.bucket)
            .key(&self.origin.object_key)
            // The version that was listed: if the object was replaced meanwhile, the next
            // listing sees the new one under its own ETag.
            .if_match(format!("\"{}\"", self.origin.etag));
        let output = self.runtime.block_on(request.send()).map_err(|error| {
            io::Error::other(format!(
                "GetObject of s3://{}/{} failed: {}",
                self.origin.bucket,
                self.origin.object_key,
                DisplayErrorContext(&error)
            ))
        })?;
        Ok(Box::new(SyncIoBridge::new_with_handle(
            output.body.into_async_read(),
            self.runtime.clone(),
        )))
    }
}
