// edgebus: a NATS bus inside the page. A thin layer over the wasm exports (pkg/), shaped
// like nats.js v3 so NATS users feel at home. All the work happens in WebAssembly; this file
// only gathers the package's modules (one per concern).

import * as bindings from "../pkg/edgebus_wasm.js";
import { setBindings } from "./bindings.js";
import { JetStreamClient, JetStreamManager } from "./jetstream.js";
import { KV } from "./kv.js";
import { Objm } from "./obj.js";
import { Leader, remoteEngine } from "./remote.js";

// The full module: core NATS, JetStream, KV, the object store and the link.
setBindings(bindings, {
  jetstream: (bus) => new JetStreamClient(bus),
  jetstreamManager: (bus) => new JetStreamManager(bus),
  kv: (bus, bucket) => new KV(bus, bucket),
  objm: (bus) => new Objm(bus),
  lead: (bus) => void new Leader(bus),
  remoteEngine,
});

export { load, open, deleteStorage, Bus, Subscription } from "./bus.js";
export type { OpenOptions, PublishOptions, RequestOptions, SubscriptionOptions, BatchSubscriptionOptions } from "./bus.js";
export {
  isNoResponders,
  isTimeout,
  ClosedConnectionError,
  TimeoutError,
  NoRespondersError,
  InvalidSubjectError,
  InvalidArgumentError,
  InvalidNameError,
  MaxPayloadError,
  StorageError,
  StorageLockedError,
  NotLeaderError,
  JetStreamApiError,
  StorageQuotaError,
  AuthorizationError,
  PullStatusError,
} from "./errors.js";
export type { BusError } from "./errors.js";
export {
  MsgHdrs,
  headers,
  Match,
  canonicalMIMEHeaderKey,
  Lister,
  RetentionPolicy,
  DiscardPolicy,
  StorageType,
  DeliverPolicy,
  AckPolicy,
  ReplayPolicy,
  PersistMode,
} from "./types.js";
export type {
  Payload,
  Nanos,
  ApiError,
  StreamConfig,
  StreamUpdateConfig,
  StreamConsumerLimits,
  SubjectTransformConfig,
  Republish,
  StreamInfo,
  StreamState,
  StreamInfoRequestOptions,
  LostStreamData,
  PurgeOpts,
  PurgeResponse,
  Success,
  MsgRequest,
  ConsumerConfig,
  ConsumerUpdateConfig,
  ConsumerInfo,
  ConsumerPauseResponse,
  PriorityPolicy,
  PriorityGroupState,
  SequenceInfo,
} from "./types.js";
export { Msg, MsgBatch } from "./msg.js";
export { Link, StatusWatcher } from "./link.js";
export type { ConnectOptions, LinkStatus, LinkInfo } from "./link.js";
export { JsMsg, Consumer, JetStreamClient, JetStreamManager, StoredMsg } from "./jetstream.js";
export type {
  PubAck,
  JetStreamPublishOptions,
  StreamExpectations,
  DeliveryInfo,
  FetchOptions,
  NextOptions,
  PriorityGroupOptions,
  FetchedMessages,
  StreamAPI,
  ConsumerAPI,
  StreamConfigRequest,
} from "./jetstream.js";
export { PushConsumer, ConsumerMessages } from "./push.js";
export type { OrderedPushConsumerOptions, PushConsumerOptions, ConsumerNotification } from "./push.js";
export { KV, KvEntry, KvWatcher } from "./kv.js";
export type { KvOptions, KvStatus } from "./kv.js";
export { Objm, ObjectStore, ObjectInfo } from "./obj.js";
export type { ObjectStoreOptions, ObjectStoreMeta, ObjectResult, ObjectStoreStatus, ObjectWatcher } from "./obj.js";
export type { StorageEstimate } from "./storage.js";
export { ConsumerGroups, ConsumerGroupMsg } from "./pcgroups.js";
export type {
  ConsumerGroupKind,
  ConsumerGroupContext,
  StaticConsumerGroupConfig,
  ElasticConsumerGroupConfig,
  PartitioningFilter,
  MemberMapping,
} from "./pcgroups.js";
export { PullConsumerMessages } from "./pull.js";
export type { ConsumeOptions } from "./pull.js";
export { FastIngest } from "./fastingest.js";
export type { FastIngestOptions, FastIngestStartOptions, FastIngestProgress, FastIngestGap } from "./fastingest.js";
export { Batch } from "./batch.js";
export type { BatchAck, BatchMessageOptions } from "./batch.js";
export { DirectStreamAPI } from "./direct.js";
export type { DirectBatchOptions, DirectLastFor, DirectBatch } from "./direct.js";
