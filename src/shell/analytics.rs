//! Writing the core's `DataPoint` to Workers Analytics Engine, from inside `ctx.wait_until`. A
//! failed write is logged and otherwise ignored: it must never affect the response.

use crate::analytics::DataPoint;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset};

pub async fn write(dataset: Option<AnalyticsEngineDataset>, point: DataPoint) {
    let Some(dataset) = dataset else {
        console_error!(
            "analytics: no Analytics Engine binding named {}",
            super::ANALYTICS_BINDING
        );
        return;
    };
    if let Err(e) = write_point(&dataset, &point).await {
        console_error!("analytics: writing the data point failed: {e:?}");
    }
}

async fn write_point(dataset: &AnalyticsEngineDataset, point: &DataPoint) -> Result<(), JsValue> {
    let js_point = AnalyticsEngineDataPointBuilder::new()
        .indexes([point.index.as_str()])
        .blobs(point.blobs.iter().map(String::as_str))
        .doubles(point.doubles.iter().copied())
        .build()
        .to_js_object()
        .map_err(JsValue::from)?;
    let write: js_sys::Function =
        js_sys::Reflect::get(dataset.as_ref(), &"writeDataPoint".into())?.dyn_into()?;
    let returned = write.call1(dataset.as_ref(), &js_point)?;
    // The platform's binding returns nothing; a binding that returns a promise (a wrapped binding in
    // tests, or a future platform change) is waited for so the write outlives the response.
    if let Ok(promise) = returned.dyn_into::<js_sys::Promise>() {
        wasm_bindgen_futures::JsFuture::from(promise).await?;
    }
    Ok(())
}
