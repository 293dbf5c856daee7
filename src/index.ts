// The package's public API.
export { sendNotification, closeConnections } from './sdk/send.ts';
export { generateRequestDetails } from './sdk/request-details.ts';
export { PushClient, type PushClientOptions, type Payload } from './sdk/client.ts';
export { generateVAPIDKeys } from './sdk/vapid.ts';
export { WebPushError, SubscriptionGoneError, WebPushValidationError } from './sdk/errors.ts';
export { DEFAULT_TTL } from './sdk/options.ts';
export type {
  PushSubscription,
  RequestOptions,
  RequestDetails,
  SendResult,
  VapidDetails,
  PushTlsOptions,
  Urgency,
  PushContentEncoding,
} from './sdk/types.ts';

// The user-agent side (src/ua): subscribe through a push service and receive messages.
export {
  PushUserAgent,
  ListenerError,
  RetryLater,
  isVapidPublicKey,
  type PushUserAgentOptions,
  type PushUserAgentEvents,
  type PushSubscriptionJSON,
  type ConnectEvent,
  type ConnectingEvent,
  type DisconnectEvent,
  type ResetEvent,
  type MessageErrorEvent,
} from './ua/client.ts';
export { DecryptionError, type PushMessage } from './ua/message.ts';
export { StateError, type UaState, type StoredSubscription } from './ua/state.ts';
export { ConnectionError, PushServiceError } from './ua/websocket-client.ts';
