//! The JetStream engine on the file store on a [`SimDisk`], hosted the way the server's
//! engine thread hosts it (the core's `EngineHost` on a bus), on a clock the test steps.
//! Publishes go over the bus with a reply subject and their acks come back the same way, so
//! what counts as acknowledged is exactly what a client would have been told.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use edgebus_core::broker::{Broker, BrokerConfig, ConnId, Delivery, LocalBus};
use edgebus_core::jetstream::host::EngineHost;
use edgebus_core::jetstream::store::{MemStorage, StoredMsg};
use edgebus_core::jetstream::JetStream;
use edgebus_core::proto::ServerInfo;

use super::sim::SimDisk;
use super::{FileStorage, FileStoreConfig, SyncHandle};
use crate::options::SyncInterval;

pub(crate) const SEC: u64 = 1_000_000_000;
pub(crate) const STREAM: &str = "S";
const INBOX: &str = "_INBOX.t";

/// What the engine answered to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Ack {
        seq: u64,
        duplicate: bool,
    },
    Error {
        code: u64,
        description: String,
    },
    /// No answer at all (the engine dropped the request).
    Silent,
}

/// One server's life on the disk: booted from whatever the disk holds, ended by a power loss.
pub(crate) struct Node {
    broker: Broker,
    client: ConnId,
    js: ConnId,
    host: EngineHost<u64>,
    sync: SyncHandle,
    pub(crate) now: u64,
    next_reply: u64,
}

impl Node {
    /// Boots on `disk` at `now`: recovers every stream the disk still holds.
    pub(crate) fn boot(disk: &SimDisk, sync_interval: SyncInterval, segment_size: u64, now: u64) -> Node {
        let cfg = FileStoreConfig { sync_interval, segment_size };
        let storage = FileStorage::with_fs(Arc::new(disk.clone()), "/store", cfg).unwrap();
        let sync = storage.sync_handle();
        let config = BrokerConfig::open(ServerInfo::default());
        let mut broker = Broker::new(config, 1);
        let client = broker.connect_local();
        let js = broker.connect_local();
        let (engine, warnings) = JetStream::new(Box::new(storage), Box::new(MemStorage), now, 1);
        if std::env::var_os("EDGEBUS_SIM_TRACE").is_some() {
            for w in &warnings {
                println!("boot warning: {w}");
            }
        }
        let host = EngineHost::new(engine, &mut LocalBus { broker: &mut broker, conn: js });
        broker.subscribe_local(client, format!("{INBOX}.*").as_bytes(), None).unwrap();
        let mut node = Node { broker, client, js, host, sync, now, next_reply: 0 };
        node.pump();
        node
    }

    /// Steps the engine until the bus is quiet, as the server's engine thread does; returns
    /// what reached the client.
    fn pump(&mut self) -> Vec<Delivery> {
        loop {
            let input = self.broker.take_deliveries(self.js);
            let mut bus = LocalBus { broker: &mut self.broker, conn: self.js };
            let out = self.host.step(self.now, &mut bus, input.iter().map(Delivery::inbound));
            for o in &out {
                bus.publish(o);
            }
            if input.is_empty() && out.is_empty() {
                return self.broker.take_deliveries(self.client);
            }
        }
    }

    /// A clean stop, as the server's `Handle::stop` does it: the host saves the engine's
    /// state and drops its subscriptions, then the stores' final sync runs as they drop.
    pub(crate) fn shutdown(mut self) {
        self.host.shutdown(&mut LocalBus { broker: &mut self.broker, conn: self.js });
    }

    /// Sends a request and returns the reply's payload, if one came.
    pub(crate) fn request(&mut self, subject: &str, headers: Option<&[u8]>, body: &[u8]) -> Option<Bytes> {
        self.next_reply += 1;
        let reply = format!("{INBOX}.{}", self.next_reply);
        self.broker
            .publish_local(self.client, subject.as_bytes(), subject.as_bytes(), Some(reply.as_bytes()), headers, body)
            .unwrap();
        self.pump().into_iter().find(|d| d.subject == reply.as_bytes()).map(|d| d.payload)
    }

    /// Publishes without waiting for an answer (an ack without a reply subject); returns what
    /// reached the client meanwhile.
    pub(crate) fn send(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        body: &[u8],
    ) -> Vec<Delivery> {
        self.broker
            .publish_local(self.client, subject.as_bytes(), subject.as_bytes(), reply.map(str::as_bytes), headers, body)
            .unwrap();
        self.pump()
    }

    /// A fresh reply subject on the client's inbox.
    pub(crate) fn inbox(&mut self) -> String {
        self.next_reply += 1;
        format!("{INBOX}.{}", self.next_reply)
    }

    /// Lets `dt` of simulated time pass and runs the timers that came due, as the host's
    /// timer would; returns what reached the client.
    pub(crate) fn advance(&mut self, dt: u64) -> Vec<Delivery> {
        let end = self.now + dt;
        let mut got = Vec::new();
        let mut last = None;
        while let Some(due) = self.host.poll_timeout(self.now).filter(|&d| d <= end) {
            // a deadline the step did not move would loop for ever: the end's step takes it
            if last == Some(due) {
                break;
            }
            last = Some(due);
            self.now = self.now.max(due);
            got.extend(self.pump());
        }
        self.now = end;
        got.extend(self.pump());
        got
    }

    /// `(first_seq, last_seq, messages)` of stream `name`, if it exists.
    pub(crate) fn state_of(&self, name: &str) -> Option<(u64, u64, u64)> {
        self.host.engine().stream_state(name).map(|s| (s.first_seq, s.last_seq, s.messages))
    }

    /// Message `seq` of stream `name` (`Err` when the store reports it damaged).
    pub(crate) fn msg_of(&mut self, name: &str, seq: u64) -> Result<Option<StoredMsg>, String> {
        self.host.engine_mut().msg(name, seq).map_err(|e| format!("{e:?}"))
    }

    /// Creates the file-backed test stream on `s.>`; `Err` with the API error if refused.
    pub(crate) fn create_stream(&mut self) -> Result<(), String> {
        self.create_stream_with("")
    }

    /// [`Node::create_stream`] with more config fields (`,"allow_atomic":true`).
    pub(crate) fn create_stream_with(&mut self, extra: &str) -> Result<(), String> {
        let body = format!(r#"{{"name":"{STREAM}","subjects":["s.>"],"storage":"file"{extra}}}"#);
        match parse(self.request(&format!("$JS.API.STREAM.CREATE.{STREAM}"), None, body.as_bytes())) {
            Reply::Ack { .. } => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// Publishes and returns what the publisher was told.
    pub(crate) fn publish(&mut self, subject: &str, msg_id: Option<&str>, payload: &[u8]) -> Reply {
        let headers = msg_id.map(|id| format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n"));
        parse(self.request(subject, headers.as_deref().map(str::as_bytes), payload))
    }

    /// Publishes all of `msgs` before the engine runs, as publishes that arrive together (or
    /// while an fsync runs) reach the server's engine thread: one step takes them all. Returns
    /// what each publisher was told, in order.
    pub(crate) fn publish_group(&mut self, msgs: &[(String, Vec<u8>)]) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(msgs.len());
        for (subject, payload) in msgs {
            self.next_reply += 1;
            let reply = format!("{INBOX}.{}", self.next_reply);
            self.broker
                .publish_local(
                    self.client,
                    subject.as_bytes(),
                    subject.as_bytes(),
                    Some(reply.as_bytes()),
                    None,
                    payload,
                )
                .unwrap();
            replies.push(reply);
        }
        let mut answers = self.pump();
        replies
            .iter()
            .map(|r| {
                let at = answers.iter().position(|d| d.subject == r.as_bytes());
                parse(at.map(|i| answers.swap_remove(i).payload))
            })
            .collect()
    }

    /// Deletes message `seq`; whether the API answered success.
    pub(crate) fn delete(&mut self, seq: u64) -> bool {
        let body = format!(r#"{{"seq":{seq}}}"#);
        self.success(&format!("$JS.API.STREAM.MSG.DELETE.{STREAM}"), &body)
    }

    /// Purges every message below `seq`; whether the API answered success.
    pub(crate) fn purge_below(&mut self, seq: u64) -> bool {
        let body = format!(r#"{{"seq":{seq}}}"#);
        self.success(&format!("$JS.API.STREAM.PURGE.{STREAM}"), &body)
    }

    fn success(&mut self, subject: &str, body: &str) -> bool {
        let answer = self.request(subject, None, body.as_bytes());
        answer.is_some_and(|a| {
            serde_json::from_slice::<serde_json::Value>(&a).is_ok_and(|v| v["success"].as_bool() == Some(true))
        })
    }

    /// The host's `sync_interval` timer firing.
    pub(crate) fn interval_sync(&self) -> bool {
        self.sync.sync_all().is_ok()
    }

    /// `(first_seq, last_seq, messages)` of the test stream, if it exists.
    pub(crate) fn state(&self) -> Option<(u64, u64, u64)> {
        self.host.engine().stream_state(STREAM).map(|s| (s.first_seq, s.last_seq, s.messages))
    }

    /// Message `seq` as the engine reads it back (`Err` when the store reports it damaged).
    pub(crate) fn msg(&mut self, seq: u64) -> Result<Option<StoredMsg>, String> {
        self.host.engine_mut().msg(STREAM, seq).map_err(|e| format!("{e:?}"))
    }
}

pub(crate) fn parse(answer: Option<Bytes>) -> Reply {
    let Some(answer) = answer else { return Reply::Silent };
    let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    if let Some(e) = v.get("error") {
        return Reply::Error {
            code: e["code"].as_u64().unwrap_or(0),
            description: e["description"].as_str().unwrap_or("").to_owned(),
        };
    }
    Reply::Ack { seq: v["seq"].as_u64().unwrap_or(0), duplicate: v["duplicate"].as_bool().unwrap_or(false) }
}
