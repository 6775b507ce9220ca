//! The consumer requests of `$JS.API`: create (and update), info, delete, names, list, and the
//! pull requests of `CONSUMER.MSG.NEXT`.

use super::*;

impl JetStream {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn consumer_create(
        &mut self,
        now: u64,
        stream: &str,
        name: Option<&str>,
        filter: Option<String>,
        legacy_durable: bool,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> Value {
        const KIND: &str = "consumer_create_response";
        let req: CreateConsumerRequest = match parse_body(payload) {
            Ok(r) => r,
            Err(e) => return error_body(KIND, &e),
        };
        let action = match consumer_action(req.action.as_ref()) {
            Ok(a) => a,
            Err(e) => return error_body(KIND, &e),
        };
        if let Err(e) = check_priority_policy(req.config.as_ref()) {
            return error_body(KIND, &e);
        }
        // nats-server requires the stream's name in the body too
        if req.stream_name.as_deref() != Some(stream) {
            return error_body(KIND, &ApiError::STREAM_NAME_MISMATCH);
        }
        let config =
            req.config.filter(|c| !c.is_null()).map(|c| <ConsumerConfig as crate::json::FromJson>::from_json(&c));
        let mut config = match config {
            None => return error_body(KIND, &ApiError::CONSUMER_CONFIG_REQUIRED),
            Some(Err(e)) => return error_body(KIND, &ApiError::invalid_json(e)),
            Some(Ok(c)) => c,
        };
        match name {
            None => {
                if config.durable_name.as_deref().is_some_and(|d| !d.is_empty()) {
                    return error_body(KIND, &ApiError::EPHEMERAL_WITH_DURABLE);
                }
            }
            Some(n) => {
                if legacy_durable {
                    match config.durable_name.as_deref() {
                        None | Some("") => return error_body(KIND, &ApiError::DURABLE_NAME_NOT_SET),
                        Some(d) if d != n => return error_body(KIND, &ApiError::DURABLE_NAME_MISMATCH),
                        _ => {}
                    }
                }
                if config.durable_name.as_deref().is_some_and(|d| !d.is_empty() && d != n) {
                    return error_body(KIND, &ApiError::DURABLE_NAME_MISMATCH);
                }
                // the name in the subject wins over the one in the config, as in nats-server
                config.name = Some(n.into());
            }
        }
        if let Err(e) = sourcing::check_config(&config) {
            return error_body(KIND, &e);
        }
        if let Some(f) = &filter {
            if !config.filter_subjects.is_empty() {
                return error_body(KIND, &ApiError::MULTIPLE_FILTERS_SUBJECT_API);
            }
            if config.filter_subject.as_deref() != Some(f.as_str()) {
                return error_body(KIND, &ApiError::FILTER_MISMATCH);
            }
        }
        let suffix: String = self.nuid().chars().take(8).collect();
        let Some(entry) = self.streams.get(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        sourcing::upgrade(&mut config, entry.stream.config.retention, &suffix);
        if let Some(existing) = config.name.as_ref().and_then(|n| entry.consumers.get(n)) {
            sourcing::keep_start(&mut config, existing.config());
        }
        if let Err(e) = self.limits.apply_to_consumer(&mut config, &entry.stream.config) {
            return error_body(KIND, &e);
        }
        if let Err(e) = config.normalize(&entry.stream.config) {
            return error_body(KIND, &e);
        }
        let cname = match config.name.clone().filter(|n| !n.is_empty()).or_else(|| config.durable_name.clone()) {
            Some(n) => n,
            None => {
                let n: String = self.nuid().chars().take(8).collect();
                config.name = Some(n.clone());
                n
            }
        };
        if config.name.is_none() {
            config.name = Some(cname.clone());
        }
        let Some(entry) = self.streams.get(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        if let Some(existing) = entry.consumers.get(&cname) {
            if action == Some("create") && existing.config() != &config {
                return error_body(KIND, &ApiError::CONSUMER_EXISTS);
            }
            if existing.config() == &config || action == Some("create") {
                return typed(KIND, crate::jetstream::config::to_value(&existing.info(now)));
            }
            // an update: keep the position, take the new config
            if existing.is_push() != config.is_push() {
                return error_body(KIND, &ApiError::consumer_create("can not change push to pull or vice versa"));
            }
            let Some(entry) = self.streams.get_mut(stream) else {
                return error_body(KIND, &ApiError::STREAM_NOT_FOUND);
            };
            if let Some(c) = entry.consumers.get_mut(&cname) {
                let pause = config.pause_until.take();
                c.state.config = config;
                c.restart_sourcing(&entry.stream);
                c.set_pause(pause, now);
                c.dirty = true;
                c.recount(&entry.stream);
            }
            self.pump_stream(stream, now, interest);
            let info = self.streams.get(stream).and_then(|e| e.consumers.get(&cname)).map(|c| c.info(now));
            return typed(KIND, crate::jetstream::config::to_value(&info));
        }
        if action == Some("update") {
            return error_body(KIND, &ApiError::CONSUMER_DOES_NOT_EXIST);
        }
        let sc = &entry.stream.config;
        if self.limits.consumers_allowed(sc).is_some_and(|m| entry.consumers.len() as u64 >= m) {
            return error_body(KIND, &ApiError::MAX_CONSUMERS);
        }
        if sc.retention == Retention::Workqueue && sourcing::limitable(&config) {
            let mine = config.filters();
            let others: Vec<&Consumer> = entry.consumers.values().filter(|c| sourcing::limitable(c.config())).collect();
            if mine.is_empty() && !others.is_empty() {
                return error_body(KIND, &ApiError::WQ_MULTIPLE_UNFILTERED);
            }
            for other in others {
                let theirs = other.config().filters();
                let clash = mine.is_empty()
                    || theirs.is_empty()
                    || mine.iter().any(|a| theirs.iter().any(|b| subject::overlaps(a.as_bytes(), b.as_bytes())));
                if clash {
                    return error_body(KIND, &ApiError::WQ_NOT_UNIQUE);
                }
            }
        }
        let consumer = Consumer::new(cname.clone(), &entry.stream, config, now);
        let Some(entry) = self.streams.get_mut(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        let _ = entry.stream.store_mut().save_consumer(&cname, &consumer.saved_state());
        entry.consumers.insert(cname.clone(), consumer);
        // the answer below reports whether it is bound already
        entry.consumers.bind_push(now, interest);
        let id = self.nuid();
        self.advisory(
            format!("$JS.EVENT.ADVISORY.CONSUMER.CREATED.{stream}.{cname}"),
            &json!({"type": "io.nats.jetstream.advisory.v1.consumer_action", "id": id, "timestamp": rfc3339(now), "stream": stream, "consumer": cname, "action": "create"}),
        );
        // the answer shows the consumer as created, before it delivers anything (nats-server's
        // `initialInfo`)
        let info = self.streams.get(stream).and_then(|e| e.consumers.get(&cname)).map(|c| c.info(now));
        self.pump_stream(stream, now, interest);
        typed(KIND, crate::jetstream::config::to_value(&info))
    }

    /// A consumer's info; like nats-server, reporting a consumer first sheds its waiting
    /// requests that can no longer be served.
    pub(super) fn consumer_info(&mut self, now: u64, stream: &str, name: &str, interest: &dyn Interest) -> Value {
        const KIND: &str = "consumer_info_response";
        let Some(e) = self.streams.get_mut(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        match e.consumers.get_mut(name) {
            Some(c) => {
                c.shed_stale_requests(now, interest, &mut self.out);
                typed(KIND, crate::jetstream::config::to_value(&c.info(now)))
            }
            None => error_body(KIND, &ApiError::CONSUMER_NOT_FOUND),
        }
    }

    pub(super) fn consumer_delete(&mut self, now: u64, stream: &str, name: &str) -> Value {
        const KIND: &str = "consumer_delete_response";
        if !self.streams.contains_key(stream) {
            return error_body(KIND, &ApiError::STREAM_NOT_FOUND);
        }
        if !self.delete_consumer(stream, name, now) {
            return error_body(KIND, &ApiError::CONSUMER_NOT_FOUND);
        }
        let id = self.nuid();
        self.advisory(
            format!("$JS.EVENT.ADVISORY.CONSUMER.DELETED.{stream}.{name}"),
            &json!({"type": "io.nats.jetstream.advisory.v1.consumer_action", "id": id, "timestamp": rfc3339(now), "stream": stream, "consumer": name, "action": "delete"}),
        );
        typed(KIND, json!({ "success": true }))
    }

    pub(super) fn consumer_names(&self, stream: &str, payload: &[u8]) -> Value {
        const KIND: &str = "consumer_names_response";
        let req: Paging = match parse_list_body(payload) {
            Ok(r) => r,
            Err(e) => return paged_error_body(KIND, "consumers", &e),
        };
        let Some(e) = self.streams.get(stream) else {
            return paged_error_body(KIND, "consumers", &ApiError::STREAM_NOT_FOUND);
        };
        let names: Vec<&String> = e.consumers.iter().filter(|(_, c)| sourcing::listed(c)).map(|(n, _)| n).collect();
        let total = names.len();
        let page: Vec<&String> = names.into_iter().skip(req.offset).take(1024).collect();
        typed(KIND, json!({ "total": total, "offset": req.offset, "limit": 1024, "consumers": page }))
    }

    pub(super) fn consumer_list(&mut self, now: u64, stream: &str, payload: &[u8], interest: &dyn Interest) -> Value {
        const KIND: &str = "consumer_list_response";
        let req: Paging = match parse_list_body(payload) {
            Ok(r) => r,
            Err(e) => return paged_error_body(KIND, "consumers", &e),
        };
        let Some(e) = self.streams.get_mut(stream) else {
            return paged_error_body(KIND, "consumers", &ApiError::STREAM_NOT_FOUND);
        };
        for c in e.consumers.values_mut() {
            c.shed_stale_requests(now, interest, &mut self.out);
        }
        let listed = || e.consumers.values().filter(|c| sourcing::listed(c));
        let total = listed().count();
        let infos: Vec<Value> = listed()
            .skip(req.offset)
            .take(256)
            .map(|c| as_listed(crate::jetstream::config::to_value(&c.info(now))))
            .collect();
        typed(KIND, json!({ "total": total, "offset": req.offset, "limit": 256, "consumers": infos }))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn msg_next(
        &mut self,
        now: u64,
        stream: &str,
        name: &str,
        rest: &[u8],
        reply: Bytes,
        payload: &[u8],
        interest: &dyn Interest,
    ) {
        let Some(c) = self.streams.get_mut(stream).and_then(|e| e.consumers.get_mut(name)) else {
            // the consumer's own subscription would not exist: no responders
            self.out.push(Outbound::status(reply, no_responders(rest)));
            return;
        };
        let mut out = Vec::new();
        c.add_pull(now, reply, payload, interest, &mut out);
        self.out.append(&mut out);
        self.pump_stream(stream, now, interest);
    }
}
