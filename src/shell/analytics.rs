//! Writing the core's `DataPoint` to Workers Analytics Engine. The platform's `writeDataPoint`
//! is synchronous and returns nothing; a binding that returns a promise (the wrapped binding the
//! tests record with) has it handed back, for the caller to keep alive past the response. A failed
//! write is logged and otherwise ignored: it must never affect the response.

use super::glue;
use crate::record::analytics::DataPoint;
use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, AnalyticsEngineDataset};

/// The Analytics Engine binding (wrangler.toml).
pub const BINDING: &str = "ANALYTICS";

pub fn write(dataset: Option<&AnalyticsEngineDataset>, point: &DataPoint) -> Option<Promise> {
    let Some(dataset) = dataset else {
        console_error!("analytics: no Analytics Engine binding named {}", BINDING);
        return None;
    };
    match write_point(dataset, point) {
        Ok(returned) => returned.dyn_into::<Promise>().ok(),
        Err(e) => {
            console_error!("analytics: writing the data point failed: {e:?}");
            None
        }
    }
}

/// `writeDataPoint({indexes, blobs, doubles})`, the blobs crossing as one JSON string.
fn write_point(dataset: &AnalyticsEngineDataset, point: &DataPoint) -> Result<JsValue, JsValue> {
    let blobs =
        serde_json::to_string(&point.blobs).map_err(|e| JsValue::from_str(&e.to_string()))?;
    glue::write_point(dataset.as_ref(), &point.index, &blobs, &point.doubles)
}
