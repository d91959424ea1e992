//! Writing the core's `DataPoint` to Workers Analytics Engine. The platform's `writeDataPoint`
//! is synchronous and returns nothing; a binding that returns a promise (the wrapped binding the
//! tests record with) has it handed back, for the caller to keep alive past the response. A failed
//! write is logged and otherwise ignored: it must never affect the response.

use crate::analytics::DataPoint;
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, AnalyticsEngineDataset};

pub fn write(dataset: Option<&AnalyticsEngineDataset>, point: &DataPoint) -> Option<Promise> {
    let Some(dataset) = dataset else {
        console_error!(
            "analytics: no Analytics Engine binding named {}",
            super::ANALYTICS_BINDING
        );
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

/// `{indexes, blobs, doubles}` built directly (strings cross once each), then `writeDataPoint`.
fn write_point(dataset: &AnalyticsEngineDataset, point: &DataPoint) -> Result<JsValue, JsValue> {
    let indexes = Array::of1(&JsValue::from_str(&point.index));
    let blobs: Array = point.blobs.iter().map(|b| JsValue::from_str(b)).collect();
    let doubles: Array = point
        .doubles
        .iter()
        .map(|d| JsValue::from_f64(*d))
        .collect();
    let js_point = Object::new();
    Reflect::set(&js_point, &"indexes".into(), &indexes)?;
    Reflect::set(&js_point, &"blobs".into(), &blobs)?;
    Reflect::set(&js_point, &"doubles".into(), &doubles)?;
    let write: js_sys::Function =
        Reflect::get(dataset.as_ref(), &"writeDataPoint".into())?.dyn_into()?;
    write.call1(dataset.as_ref(), &js_point)
}
