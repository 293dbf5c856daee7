// The application-server SDK's public API (the webpushd-sdk package): web-push's sending side.
// It imports no logger, metrics or WebSocket library, so an application server that only sends
// installs nothing else (packages/webpushd-sdk).
export { sendNotification, sendMany, cancelNotification, closeConnections } from './send.ts';
export { DEFAULT_CONCURRENCY, type SendManyOptions, type SendManyResult, type SendManyProgress, type SendManySummary } from './send-many.ts';
export type { Trace, TraceEvent } from './trace.ts';
export { listenReceipts, type Receipt, type ListenReceiptsOptions, type ListenReceiptsResult } from './receipts.ts';
export { generateRequestDetails } from './request-details.ts';
export {
  createAggregate,
  aggregateMembers,
  changeAggregate,
  deleteAggregate,
  sendToAggregate,
  sendBatchToAggregate,
  type AggregateOptions,
  type AggregateSendOptions,
  type BatchSendOptions,
  type AggregateChange,
  type CreatedAggregate,
  type BatchMessage,
  type FanoutResult,
  type MemberResult,
} from './aggregates.ts';
export { PushClient, type PushClientOptions, type Payload } from './client.ts';
export { generateVAPIDKeys } from './vapid.ts';
export { WebPushError, SubscriptionGoneError, WebPushValidationError } from './errors.ts';
export { DEFAULT_TTL } from './options.ts';
export type {
  PushSubscription,
  RequestOptions,
  RequestDetails,
  SendResult,
  VapidDetails,
  PushTlsOptions,
  Urgency,
  PushContentEncoding,
} from './types.ts';
