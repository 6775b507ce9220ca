//! Core NATS with async-nats: publish/subscribe across connections, wildcards,
//! headers, queue groups, request/reply and no-responders.

use std::time::Duration;

use edgebus_client_tests::{round_trip, unique, within, TestServer};
use futures::StreamExt;

#[tokio::test]
async fn pub_sub_between_two_connections() {
    let server = TestServer::start();
    let subscriber = server.connect().await;
    let publisher = server.connect().await;
    let prefix = unique("core");

    let mut exact = subscriber.subscribe(format!("{prefix}.a.b")).await.expect("subscribe");
    let mut star = subscriber.subscribe(format!("{prefix}.*.b")).await.expect("subscribe");
    let mut tail = subscriber.subscribe(format!("{prefix}.>")).await.expect("subscribe");
    // The subscriptions are known to the server before the other connection publishes.
    round_trip(&subscriber).await;

    for i in 0..3 {
        publisher.publish(format!("{prefix}.a.b"), format!("m{i}").into()).await.expect("publish");
    }
    publisher.publish(format!("{prefix}.x.y.z"), "deep".into()).await.expect("publish");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "t-1");
    publisher
        .publish_with_headers(format!("{prefix}.h.b"), headers, "with headers".into())
        .await
        .expect("publish with headers");
    publisher.flush().await.expect("flush");

    for i in 0..3 {
        let m = within(10, "exact subscription", exact.next()).await.expect("message");
        assert_eq!(m.payload.as_ref(), format!("m{i}").as_bytes());
        assert_eq!(m.subject.as_str(), format!("{prefix}.a.b"));
    }
    let mut star_got = Vec::new();
    for _ in 0..4 {
        let m = within(10, "`*` subscription", star.next()).await.expect("message");
        star_got.push(String::from_utf8_lossy(&m.payload).to_string());
    }
    assert_eq!(star_got, ["m0", "m1", "m2", "with headers"]);
    let mut tail_got = Vec::new();
    for _ in 0..5 {
        let m = within(10, "`>` subscription", tail.next()).await.expect("message");
        tail_got.push(m);
    }
    assert_eq!(tail_got[3].subject.as_str(), format!("{prefix}.x.y.z"));
    let h = tail_got[4].headers.as_ref().expect("headers arrive");
    assert_eq!(h.get("X-Trace").map(|v| v.as_str()), Some("t-1"));

    // Nothing else was delivered to the exact subscription (checked after a round trip).
    round_trip(&publisher).await;
    round_trip(&subscriber).await;
    let extra = tokio::time::timeout(Duration::from_millis(200), exact.next()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    let publisher = server.connect().await;
    let subject = unique("queue");
    let mut qa = a.queue_subscribe(subject.clone(), "workers".into()).await.expect("queue sub");
    let mut qb = b.queue_subscribe(subject.clone(), "workers".into()).await.expect("queue sub");
    round_trip(&a).await;
    round_trip(&b).await;

    const N: usize = 40;
    for i in 0..N {
        publisher.publish(subject.clone(), i.to_string().into()).await.expect("publish");
    }
    round_trip(&publisher).await;

    let mut seen = Vec::new();
    while seen.len() < N {
        let m = within(10, "queue deliveries", async {
            tokio::select! {
                m = qa.next() => m,
                m = qb.next() => m,
            }
        })
        .await
        .expect("message");
        seen.push(String::from_utf8_lossy(&m.payload).parse::<usize>().expect("number"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..N).collect::<Vec<_>>(), "each message exactly once across the group");
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let server = TestServer::start();
    let responder = server.connect().await;
    let requester = server.connect().await;
    let subject = unique("svc");

    let mut service = responder.subscribe(subject.clone()).await.expect("subscribe");
    let responder_clone = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(msg) = service.next().await {
            let reply = msg.reply.expect("request carries a reply subject");
            let mut body = b"echo:".to_vec();
            body.extend_from_slice(&msg.payload);
            responder_clone.publish(reply, body.into()).await.expect("reply");
        }
    });
    round_trip(&responder).await;

    for i in 0..5 {
        let resp = within(10, "reply", requester.request(subject.clone(), format!("q{i}").into()))
            .await
            .expect("request answered");
        assert_eq!(resp.payload.as_ref(), format!("echo:q{i}").as_bytes());
    }

    // Nobody listens: the server answers with a 503 status at once.
    let err = within(10, "no-responders answer", requester.request(unique("nobody"), "x".into()))
        .await
        .expect_err("a request without responders fails");
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders, "{err}");
    task.abort();
}
