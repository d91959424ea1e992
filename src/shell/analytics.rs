//! Writing the core's `DataPoint` to Workers Analytics Engine. A failed write is logged and
//! otherwise ignored: it must never affect the response.

use crate::analytics::DataPoint;
use worker::{console_error, AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset};

pub fn write(dataset: Option<AnalyticsEngineDataset>, point: &DataPoint) {
    let Some(dataset) = dataset else {
        console_error!(
            "analytics: no Analytics Engine binding named {}",
            super::ANALYTICS_BINDING
        );
        return;
    };
    let result = AnalyticsEngineDataPointBuilder::new()
        .indexes([point.index.as_str()])
        .blobs(point.blobs.iter().map(String::as_str))
        .doubles(point.doubles.iter().copied())
        .write_to(&dataset);
    if let Err(e) = result {
        console_error!("analytics: writing the data point failed: {e}");
    }
}
