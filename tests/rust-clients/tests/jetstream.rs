//! JetStream with async-nats: stream creation, publish acknowledgements (with
//! deduplication), and a durable pull consumer fetching and acknowledging.

use async_nats::jetstream::{self, consumer, stream};
use edgebus_client_tests::{unique, within, TestServer};
use futures::StreamExt;

#[tokio::test]
async fn stream_publish_acks_and_pull_consumer() {
    let server = TestServer::start();
    let client = server.connect().await;
    let js = jetstream::new(client);
    let name = unique("RS").to_uppercase();
    let prefix = name.to_lowercase();

    let mut stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("create stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, vec![format!("{prefix}.>")]);
    assert_eq!(info.state.messages, 0);

    // Publish acks carry the stream and consecutive sequences.
    for i in 1..=6u64 {
        let subject = format!("{prefix}.{}", if i % 2 == 0 { "even" } else { "odd" });
        let ack = js.publish(subject, format!("msg-{i}").into()).await.expect("publish").await.expect("ack");
        assert_eq!((ack.stream.as_str(), ack.sequence, ack.duplicate), (name.as_str(), i, false));
    }
    // A repeated Nats-Msg-Id is acknowledged as a duplicate of the first.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "once");
    let first = js
        .publish_with_headers(format!("{prefix}.odd"), headers.clone(), "dedup".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let again = js
        .publish_with_headers(format!("{prefix}.odd"), headers, "dedup".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!((first.sequence, first.duplicate), (7, false));
    assert_eq!((again.sequence, again.duplicate), (7, true));
    assert_eq!(stream.info().await.expect("info").state.messages, 7);

    // A durable pull consumer: fetch a batch, acknowledge it, fetch the rest.
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("puller".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("create consumer");
    let mut batch = consumer.fetch().max_messages(4).messages().await.expect("fetch");
    let mut seqs = Vec::new();
    while let Some(msg) = within(10, "first batch", batch.next()).await {
        let msg = msg.expect("message");
        let info = msg.info().expect("jetstream metadata");
        seqs.push(info.stream_sequence);
        assert_eq!(msg.payload.as_ref(), format!("msg-{}", info.stream_sequence).as_bytes());
        msg.double_ack().await.expect("ack confirmed");
    }
    assert_eq!(seqs, [1, 2, 3, 4]);

    let mut consumer = consumer;
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 3);
    assert_eq!(info.ack_floor.stream_sequence, 4);

    // The rest; one is left unacknowledged.
    let mut batch = consumer.fetch().max_messages(10).messages().await.expect("fetch");
    let mut rest = Vec::new();
    while let Some(msg) = within(10, "second batch", batch.next()).await {
        rest.push(msg.expect("message"));
    }
    let rest_seqs: Vec<u64> = rest.iter().map(|m| m.info().expect("metadata").stream_sequence).collect();
    assert_eq!(rest_seqs, [5, 6, 7]);
    for m in &rest[..2] {
        m.double_ack().await.expect("ack confirmed");
    }
    let info = consumer.info().await.expect("consumer info");
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 1));
    assert_eq!(info.delivered.stream_sequence, 7);
    assert_eq!(info.ack_floor.stream_sequence, 6);
}
