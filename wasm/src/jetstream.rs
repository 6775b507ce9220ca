//! The page's JetStream client: `$JS.API` requests, publish with ack, pull fetch. Everything
//! goes through the in-page bus exactly as a NATS client's traffic would go through a server.

use bytes::Bytes;
use edgebus_core::broker::Delivery;
use edgebus_core::jetstream::client::{self, PublishExpect, PullReply, PullRequest};
use edgebus_core::json::typed::{self, Fields, FromJson};
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::bus::{self, request, status_of, Collect, Shared};
use crate::error::BusError;

/// Default time a JetStream API request may take.
pub const API_TIMEOUT_MS: u32 = 5_000;

/// Parses an API reply, turning `{"error": …}` into [`BusError::Api`].
pub fn parse_api(payload: &[u8]) -> Result<Value, BusError> {
    if let Some(e) = client::reply_error(payload) {
        return Err(e.into());
    }
    serde_json::from_slice(payload).map_err(|e| BusError::Invalid(format!("unreadable JetStream reply: {e}")))
}

/// One `$JS.API.<api>` request.
pub async fn api(rc: &Shared, api: &str, body: &Value, timeout_ms: u32) -> Result<Value, BusError> {
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap_or_default() };
    let d = request(rc, &format!("$JS.API.{api}"), None, &body, timeout_ms).await?;
    parse_api(&d.payload)
}

/// Expectations and ids a JetStream publish can carry (nats.js `JetStreamPublishOptions`).
#[derive(Default)]
pub struct PublishOptions {
    pub msg_id: Option<String>,
    pub expect: Option<Expect>,
    pub headers: Option<Vec<(String, String)>>,
    pub timeout: Option<u32>,
}

#[derive(Default)]
pub struct Expect {
    pub last_msg_id: Option<String>,
    pub stream_name: Option<String>,
    pub last_sequence: Option<u64>,
    pub last_subject_sequence: Option<u64>,
}

impl FromJson for PublishOptions {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct PublishOptions")?;
        Ok(PublishOptions {
            msg_id: f.get("msgID", None)?,
            expect: f.get("expect", None)?,
            headers: f.get("headers", None)?,
            timeout: f.get("timeout", None)?,
        })
    }
}

impl FromJson for Expect {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct Expect")?;
        Ok(Expect {
            last_msg_id: f.get("lastMsgID", None)?,
            stream_name: f.get("streamName", None)?,
            last_sequence: f.get("lastSequence", None)?,
            last_subject_sequence: f.get("lastSubjectSequence", None)?,
        })
    }
}

impl PublishOptions {
    /// The header block: the caller's headers, then the expectations (core conventions).
    fn headers(&self) -> Option<Bytes> {
        let e = self.expect.as_ref();
        let expect = PublishExpect {
            msg_id: self.msg_id.clone(),
            last_msg_id: e.and_then(|e| e.last_msg_id.clone()),
            stream: e.and_then(|e| e.stream_name.clone()),
            last_sequence: e.and_then(|e| e.last_sequence),
            last_subject_sequence: e.and_then(|e| e.last_subject_sequence),
        };
        client::publish_headers(self.headers.as_deref().unwrap_or_default(), &expect)
    }
}

/// Publishes to a stream and waits for its ack (sent only after the write is durable).
pub async fn publish(rc: &Shared, subject: &str, payload: &[u8], opts: &PublishOptions) -> Result<Value, BusError> {
    parse_api(&publish_raw(rc, subject, payload, opts).await?)
}

/// [`publish`], answering with the ack's JSON text unparsed (the page parses it: a JSON value
/// built here would only be turned into text and parsed again on its way out). An error
/// reply is still an `Err`.
pub async fn publish_raw(rc: &Shared, subject: &str, payload: &[u8], opts: &PublishOptions) -> Result<Bytes, BusError> {
    let headers = opts.headers();
    let d = request(rc, subject, headers, payload, opts.timeout.unwrap_or(API_TIMEOUT_MS)).await?;
    ack_of(&d)?;
    Ok(d.payload)
}

/// The ack of a stream publish as JSON text; an error reply becomes an `Err`.
pub fn ack_of(d: &Delivery) -> Result<&[u8], BusError> {
    if let Some(e) = client::reply_error(&d.payload) {
        return Err(e.into());
    }
    if !d.payload.starts_with(b"{") {
        return Err(BusError::Invalid("unreadable JetStream ack".into()));
    }
    Ok(&d.payload)
}

/// Many stream publishes at once (no headers or options), stored together: one commit covers
/// them. Answers `[acks, errors]`: `acks` the PubAcks in order (`null` where one failed),
/// parsed from one JSON text; `errors` `undefined`, or per message `undefined` or the error.
/// Stored by the engine directly where a request over the bus would do nothing more
/// ([`bus::publish_direct`]), else as one request each.
pub async fn publish_many(rc: &Shared, subjects: &str, data: &[u8], ends: &[u32]) -> Result<JsValue, BusError> {
    let subjects: Vec<&str> = subjects.split('\n').collect();
    if subjects.len() != ends.len() {
        return Err(BusError::Invalid(format!("{} subjects for {} payloads", subjects.len(), ends.len())));
    }
    let mut msgs = Vec::with_capacity(ends.len());
    let mut start = 0;
    for (subject, &end) in subjects.iter().zip(ends) {
        let payload = data
            .get(start..end as usize)
            .ok_or_else(|| BusError::Invalid(format!("payload end {end} out of order or past the data")))?;
        msgs.push((*subject, payload));
        start = end as usize;
    }
    let mut acks = Acks::new(msgs.len());
    if let Some((results, batch)) = bus::publish_direct(rc, &msgs)? {
        bus::durable(rc, batch).await?;
        for r in results {
            let r = r.map_err(BusError::from).and_then(|ack| {
                serde_json::to_vec(&ack).map_err(|e| BusError::Invalid(format!("unwritable JetStream ack: {e}")))
            });
            match r {
                Ok(ack) => acks.push(Ok(&ack)),
                Err(e) => acks.push(Err(e)),
            }
        }
    } else {
        for r in bus::request_many(rc, msgs.into_iter(), API_TIMEOUT_MS).await {
            match r {
                Ok(d) => acks.push(ack_of(&d)),
                Err(e) => acks.push(Err(e)),
            }
        }
    }
    acks.finish()
}

/// [`publish_many`]'s answer as it is built: the acks' JSON array text and the errors.
struct Acks {
    text: Vec<u8>,
    n: u32,
    len: u32,
    errors: Option<js_sys::Array>,
}

impl Acks {
    fn new(len: usize) -> Acks {
        let mut text = Vec::with_capacity(len * 40 + 2);
        text.push(b'[');
        Acks { text, n: 0, len: len as u32, errors: None }
    }

    /// Records the next message's outcome: its ack's JSON text, or its error.
    fn push(&mut self, r: Result<&[u8], BusError>) {
        match r {
            Ok(ack) => self.text.extend_from_slice(ack),
            Err(e) => {
                self.text.extend_from_slice(b"null");
                let list = self.errors.get_or_insert_with(|| js_sys::Array::new_with_length(self.n));
                list.set(self.n, e.into());
            }
        }
        self.n += 1;
        if self.n < self.len {
            self.text.push(b',');
        }
    }

    fn finish(mut self) -> Result<JsValue, BusError> {
        self.text.push(b']');
        let acks = js_sys::JSON::parse(&String::from_utf8_lossy(&self.text))
            .map_err(|_| BusError::Invalid("unreadable JetStream ack".into()))?;
        let errors: JsValue = match self.errors {
            Some(list) => {
                list.set_length(self.len);
                list.into()
            }
            None => JsValue::UNDEFINED,
        };
        Ok(js_sys::Array::of2(&acks, &errors).into())
    }
}

/// Pull `req.batch` messages (fewer if the request expires or nothing is pending with
/// no_wait). A `423` (the pin id is not the pinned one) ends it and is kept, last, so the
/// caller can forget its pin; so is any other status but `404`/`408` (a `400` bad request, a
/// `409` consumer deleted): a caller pulling in a loop must stop on those, not pull again.
pub async fn fetch(
    rc: &Shared,
    stream: &str,
    consumer: &str,
    req: &PullRequest,
    expires_ms: u32,
) -> Result<Vec<Delivery>, BusError> {
    let batch = req.batch.max(1);
    let body = req.to_json();
    let inbox = rc.borrow_mut().new_inbox();
    let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}");
    let mut count = 0;
    let wait = if expires_ms > 0 { expires_ms.saturating_add(1_000) } else { API_TIMEOUT_MS };
    bus::collect(rc, &inbox, Some((&subject, &body)), wait, |d| {
        let status = status_of(d);
        match PullReply::of(status) {
            PullReply::Heartbeat => Collect::Skip,
            PullReply::End if matches!(status, Some(404 | 408)) => Collect::Stop,
            PullReply::End | PullReply::Unpinned => Collect::KeepAndStop,
            PullReply::Message => {
                count += 1;
                if count >= batch {
                    Collect::KeepAndStop
                } else {
                    Collect::Keep
                }
            }
        }
    })
    .await
}
