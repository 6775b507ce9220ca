//! Reading the page's option objects field by field with `Reflect`: no deserializer code per
//! options type (serde's made most of the core-only module), and the values are taken as
//! JavaScript holds them, without a trip through JSON text.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::BusError;

/// An options argument: `undefined` and `null` read as an empty object.
pub(crate) struct Opts(Option<Object>);

fn refuse(key: &str, want: &str) -> BusError {
    BusError::Invalid(["option ", key, ": expected ", want].concat())
}

impl Opts {
    pub(crate) fn new(v: &JsValue) -> Result<Self, BusError> {
        if v.is_undefined() || v.is_null() {
            return Ok(Opts(None));
        }
        match v.dyn_ref::<Object>() {
            Some(o) if !v.is_function() && !Array::is_array(v) => Ok(Opts(Some(o.clone()))),
            _ => Err(BusError::Invalid("options: expected an object".into())),
        }
    }

    /// The value of `key`, `None` when missing, `undefined` or `null`.
    fn get(&self, key: &str) -> Option<JsValue> {
        let v = Reflect::get(self.0.as_ref()?, &JsValue::from_str(key)).ok()?;
        (!v.is_undefined() && !v.is_null()).then_some(v)
    }

    pub(crate) fn str(&self, key: &str) -> Result<Option<String>, BusError> {
        self.get(key).map(|v| v.as_string().ok_or_else(|| refuse(key, "a string"))).transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, BusError> {
        self.get(key).map(|v| v.as_bool().ok_or_else(|| refuse(key, "a boolean"))).transpose()
    }

    /// A whole number from 0 to `u32::MAX` (milliseconds, counts).
    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>, BusError> {
        let whole = |n: f64| (n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n)).then_some(n as u32);
        self.get(key).map(|v| v.as_f64().and_then(whole).ok_or_else(|| refuse(key, "a whole number"))).transpose()
    }

    /// An array of strings; missing reads as empty.
    pub(crate) fn strs(&self, key: &str) -> Result<Vec<String>, BusError> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let list = v.dyn_into::<Array>().map_err(|_| refuse(key, "an array of strings"))?;
        list.iter().map(|s| s.as_string().ok_or_else(|| refuse(key, "an array of strings"))).collect()
    }

    /// Headers as the package passes them: `[name, value][]`.
    pub(crate) fn pairs(&self, key: &str) -> Result<Option<Vec<(String, String)>>, BusError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let bad = || refuse(key, "an array of [name, value] pairs");
        let list = v.dyn_into::<Array>().map_err(|_| bad())?;
        let pair = |p: JsValue| {
            let p = p.dyn_into::<Array>().ok().filter(|p| p.length() == 2)?;
            Some((p.get(0).as_string()?, p.get(1).as_string()?))
        };
        list.iter().map(|p| pair(p).ok_or_else(bad)).collect::<Result<_, _>>().map(Some)
    }
}
